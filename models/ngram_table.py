"""A fitted interpolated Kneser-Ney model in compact arrays: what a model file stores and the
service reads (fitting lives in ``training.kneser_ney``).

Per context length k (0 .. order - 1), the contexts are sorted by an integer key (the context's
word ids as digits in base C), and each context owns a slice of the word ids that followed it
(sorted) with their discounted counts. A lookup is a binary search, the whole table a few tens
of MB for a 5-gram over the Austen novels, against several hundred MB as Python dicts. The
probabilities are the fitted model's exactly:

    p_k(w | h) = discounted(h w) / total(h) + backoff(h) p_{k-1}(w | h'),   p_0(w) = 1 / (C - 1)

where a context never seen at length k leaves p_{k-1} as it is, and SENTENCE_START (never
predicted) has probability 0.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ContextLevel:
    """The contexts of one length: sorted keys, their slices of ``words``/``discounted``, and weights."""

    keys: np.ndarray  # int64, sorted
    offsets: np.ndarray  # int64, len(keys) + 1
    inverse_total: np.ndarray  # float64, 1 / total(h)
    backoff: np.ndarray  # float64, gamma(h)
    words: np.ndarray  # int32, sorted within each context's slice
    discounted: np.ndarray  # float64

    def find(self, key: int) -> int:
        """Index of the context with this key, or -1."""
        i = int(np.searchsorted(self.keys, key))
        return i if i < self.keys.size and self.keys[i] == key else -1

    def to_payload(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class NgramTable:
    """Interpolated Kneser-Ney probabilities of a fitted model, from compact arrays."""

    def __init__(self, order: int, vocab_size: int, start_id: int, levels: Sequence[ContextLevel]):
        if len(levels) != order:
            raise ValueError(f"an order-{order} table needs {order} context levels, got {len(levels)}")
        if order > 1 and vocab_size ** (order - 1) >= 2**63:
            raise ValueError(f"contexts of {order - 1} words over {vocab_size} words do not fit an int64 key")
        self.order = order
        self.vocab_size = vocab_size
        self.start_id = start_id
        self.levels = list(levels)
        self._uniform = np.full(vocab_size, 1.0 / (vocab_size - 1))
        self._uniform[start_id] = 0.0
        self._unigram: np.ndarray | None = None

    # ----------------------------------------------------------------- building and storing
    @classmethod
    def from_counts(
        cls,
        order: int,
        vocab_size: int,
        start_id: int,
        discounted: Sequence[dict[tuple[int, ...], float]],
        contexts: Sequence[dict[tuple[int, ...], tuple[float, float]]],
    ) -> "NgramTable":
        """From per-level dicts: n-gram -> discounted count, context -> (1 / total, backoff)."""
        levels = []
        for k in range(order):
            grams = np.array(list(discounted[k].keys()), dtype=np.int64).reshape(len(discounted[k]), k + 1)
            values = np.fromiter(discounted[k].values(), dtype=np.float64, count=len(discounted[k]))
            gram_keys = _keys(grams[:, :k], vocab_size)
            order_ = np.lexsort((grams[:, k], gram_keys))
            gram_keys, words, values = gram_keys[order_], grams[order_, k], values[order_]
            ctx = np.array(list(contexts[k].keys()), dtype=np.int64).reshape(len(contexts[k]), k)
            weights = np.array(list(contexts[k].values()), dtype=np.float64).reshape(len(contexts[k]), 2)
            ctx_keys = _keys(ctx, vocab_size)
            by_key = np.argsort(ctx_keys)
            ctx_keys, weights = ctx_keys[by_key], weights[by_key]
            offsets = np.searchsorted(gram_keys, np.append(ctx_keys, np.iinfo(np.int64).max), side="left")
            offsets[-1] = gram_keys.size
            levels.append(ContextLevel(ctx_keys, offsets.astype(np.int64), weights[:, 0].copy(),
                                       weights[:, 1].copy(), words.astype(np.int32), values))
        return cls(order, vocab_size, start_id, levels)

    def to_payload(self) -> dict:
        """Plain arrays and numbers, for the model file."""
        return {"order": self.order, "vocab_size": self.vocab_size, "start_id": self.start_id,
                "levels": [level.to_payload() for level in self.levels]}

    @classmethod
    def from_payload(cls, payload: dict) -> "NgramTable":
        levels = [ContextLevel(**{name: np.asarray(value) for name, value in level.items()})
                  for level in payload["levels"]]
        return cls(int(payload["order"]), int(payload["vocab_size"]), int(payload["start_id"]), levels)

    # ---------------------------------------------------------------------- probabilities
    def _contexts_of(self, history: Sequence[int]) -> Iterable[tuple[ContextLevel, int]]:
        """(level, context index) from the empty context up to the longest seen one."""
        context = list(history[max(0, len(history) - self.order + 1) :])
        for k in range(len(context) + 1):
            level = self.levels[k]
            index = level.find(_key(context[len(context) - k :], self.vocab_size))
            if index < 0:  # an unseen context: no longer one can have been seen either
                return
            yield level, index

    def prob(self, history: Sequence[int], word: int) -> float:
        """p(word | history); only the last ``order - 1`` words of the history count."""
        p = float(self._uniform[word])
        for level, i in self._contexts_of(history):
            first, last = level.offsets[i], level.offsets[i + 1]
            j = first + int(np.searchsorted(level.words[first:last], word))
            seen = level.discounted[j] if j < last and level.words[j] == word else 0.0
            p = seen * level.inverse_total[i] + level.backoff[i] * p
        return p

    def next_word_probs(self, history: Sequence[int]) -> np.ndarray:
        """p(w | history) for every word w (sums to 1).

        Unrolled from the longest context down: p = sum over seen contexts of their (sparse)
        discounted counts times the backoff weights of the longer ones, plus the unigram level
        (dense, the same for every history, computed once) times all the backoff weights.
        """
        found = list(self._contexts_of(history))
        factor = 1.0
        sparse = []
        for level, i in reversed(found[1:]):
            sparse.append((level, i, factor))
            factor *= level.backoff[i]
        p = self._unigram_level() * factor
        for level, i, weight in sparse:
            first, last = level.offsets[i], level.offsets[i + 1]
            p[level.words[first:last]] += level.discounted[first:last] * (level.inverse_total[i] * weight)
        return p

    def _unigram_level(self) -> np.ndarray:
        """p_1(w): the empty context's discounted counts over the uniform distribution (cached)."""
        if self._unigram is None:
            p = self._uniform.copy()
            for level, i in self._contexts_of([]):
                first, last = level.offsets[i], level.offsets[i + 1]
                p *= level.backoff[i]
                p[level.words[first:last]] += level.discounted[first:last] * level.inverse_total[i]
            self._unigram = p
        return self._unigram

    def token_probs(self, sentence: Sequence[int]) -> np.ndarray:
        """p of each token after SENTENCE_START given the tokens before it."""
        return np.array([self.prob(sentence[:i], sentence[i]) for i in range(1, len(sentence))])


def _key(context: Sequence[int], base: int) -> int:
    key = 0
    for word in context:
        key = key * base + int(word)
    return key


def _keys(contexts: np.ndarray, base: int) -> np.ndarray:
    """``_key`` of every row (int64)."""
    keys = np.zeros(contexts.shape[0], dtype=np.int64)
    for column in range(contexts.shape[1]):
        keys = keys * base + contexts[:, column]
    return keys

"""A fitted interpolated Kneser-Ney model in compact arrays: what a model file stores and the
service reads (fitting lives in ``training.kneser_ney``).

Per context length k (0 .. order - 1), the contexts are sorted by an integer key, and each
context owns a slice of the word ids that followed it (sorted) with their discounted counts.
The probabilities are the fitted model's exactly:

    p_k(w | h) = discounted(h w) / total(h) + backoff(h) p_{k-1}(w | h'),   p_0(w) = 1 / (C - 1)

where a context never seen at length k leaves p_{k-1} as it is, and SENTENCE_START (never
predicted) has probability 0.

Keys chain each context to its suffix, like a trie read from the newest word backwards: the
empty context has key 0, and a context (w_1 .. w_k) (oldest word first) has the key

    key_k(w_1 .. w_k) = index_{k-1}(w_2 .. w_k) * C + w_1

where index_{k-1} is the position of the suffix (w_2 .. w_k) among the sorted contexts of length
k - 1. A lookup walks from the empty context outward, one word further into the past per level,
and stops at the first context never seen; a context whose suffix is not in the table could never
be reached that way, so none is stored. A key is below (number of contexts of length k - 1) * C,
so it fits an int64 at any order for vocabularies of millions of words, where the former keys
(the context's words as digits in base C, still read from older files) overflowed at order 5
beyond about 55k words.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# how a table payload names its key scheme; payloads without it hold the base-C keys
KEY_SCHEME = "suffix-chain"


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

    def find_all(self, keys: np.ndarray) -> np.ndarray:
        """Index of the context with each key, or -1 (one binary search for all of them)."""
        if not self.keys.size:
            return np.full(keys.shape, -1, dtype=np.int64)
        i = self.keys.searchsorted(keys)
        np.putmask(i, self.keys.take(i, mode="clip") != keys, -1)
        return i

    def slices(self, contexts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For these context indices: how many entries each owns, and the positions of all of
        them in ``words``/``discounted`` (context by context, in the order given)."""
        first = self.offsets[contexts]
        counts = self.offsets[contexts + 1] - first
        return counts, spans(first, counts)

    def select(self, contexts: np.ndarray, keys: np.ndarray) -> "ContextLevel":
        """The level holding only these contexts, in this order, under these keys."""
        counts, entries = self.slices(contexts)
        offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        return ContextLevel(keys.astype(np.int64), offsets, self.inverse_total[contexts], self.backoff[contexts],
                            self.words[entries], self.discounted[entries])

    def to_payload(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def spans(first: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The positions first[i], first[i] + 1, ..., first[i] + counts[i] - 1 of every i, in order."""
    ends = counts.cumsum()
    starts = first - ends
    starts += counts
    return starts.repeat(counts) + np.arange(int(ends[-1]) if ends.size else 0, dtype=np.int64)


@dataclass(frozen=True)
class NewestFirst:
    """Histories as the n-gram model reads them, one row each: row r's last words, newest first,
    are ``words[r, :lengths[r]]`` (at most ``words.shape[1]``, the model's order - 1; the rest of
    the row is padding). What ``NgramTable.seen_batch`` reads; a decoder can keep it up to date
    word by word instead of slicing every history on every step."""

    words: np.ndarray  # (B, order - 1) int64
    lengths: np.ndarray  # (B,) int64

    @classmethod
    def of(cls, histories: Sequence[Sequence[int]], reach: int) -> "NewestFirst":
        """The last ``reach`` words of each history."""
        tails = [list(history[max(0, len(history) - reach) :]) if reach else [] for history in histories]
        lengths = np.fromiter(map(len, tails), dtype=np.int64, count=len(tails))
        words = np.array([tail[::-1] + [0] * (reach - len(tail)) for tail in tails], dtype=np.int64)
        return cls(words.reshape(len(tails), reach), lengths)

    def history(self, row: int) -> list[int]:
        """Row ``row``'s words, oldest first."""
        return self.words[row, : self.lengths[row]][::-1].tolist()


@dataclass(frozen=True)
class FlatLevels:
    """The context levels of lengths order - 1 down to 1 (``SeenContexts``' columns) as one set of
    arrays, each level's contexts after one empty context that stands for a context never seen
    (no entries, 1 / total 0, backoff 1): a batch reads what it needs of every length with one
    ``take`` instead of one per length. The levels' own arrays but ``offsets`` are views into
    these (``NgramTable.flat``), so only ``offsets`` costs memory twice."""

    base: np.ndarray  # (columns,) the flat index of each column's context 0; base - 1: its empty context
    entry_base: np.ndarray  # (columns,) where each column's entries begin in ``words``/``discounted``
    offsets: np.ndarray  # (contexts + 1,) each flat context's first entry, the last one's end after it
    inverse_total: np.ndarray
    backoff: np.ndarray
    words: np.ndarray
    discounted: np.ndarray

    @classmethod
    def of(cls, levels: Sequence[ContextLevel]) -> tuple["FlatLevels", list[ContextLevel]]:
        """From the levels of the columns (longest context first); with those levels again, their
        arrays views into the flat ones."""
        sizes = [level.keys.size for level in levels]
        base = np.cumsum([1, *[size + 1 for size in sizes]], dtype=np.int64)[: len(levels)]
        entry_sizes = [level.words.size for level in levels]
        entry_base = np.cumsum([0, *entry_sizes], dtype=np.int64)[: len(levels)]
        contexts, entries = sum(sizes) + len(levels), sum(entry_sizes)
        flat = cls(base, entry_base, np.empty(contexts + 1, dtype=np.int64), np.zeros(contexts), np.ones(contexts),
                   np.empty(entries, dtype=np.result_type(np.int32, *[level.words for level in levels])),
                   np.empty(entries))
        viewed = []
        for level, first, start, size, entry_size in zip(levels, base.tolist(), entry_base.tolist(), sizes, entry_sizes):
            contexts_here, entries_here = slice(first, first + size), slice(start, start + entry_size)
            flat.offsets[first - 1] = start
            flat.offsets[contexts_here] = level.offsets[:size] + start
            for name, part in (("inverse_total", contexts_here), ("backoff", contexts_here), ("words", entries_here),
                               ("discounted", entries_here)):
                getattr(flat, name)[part] = getattr(level, name)
            viewed.append(ContextLevel(level.keys, level.offsets, flat.inverse_total[contexts_here],
                                       flat.backoff[contexts_here], flat.words[entries_here],
                                       flat.discounted[entries_here]))
        flat.offsets[-1] = entries
        return flat, viewed


@dataclass(frozen=True)
class SeenContexts:
    """Each row's distribution as ``factor[row]`` times the unigram level plus, per context length
    from the longest (order - 1) down to 1 (the columns of ``contexts`` and ``scale``), the counts
    of the row's context of that length (-1 where never seen), multiplied by its ``scale`` (1 /
    total times the backoff weights of the longer contexts)."""

    factor: np.ndarray  # (B,)
    contexts: np.ndarray  # (B, order - 1), context indices, longest first
    scale: np.ndarray  # (B, order - 1); 0 where the context is -1
    flat: np.ndarray  # (order - 1, B): ``contexts`` transposed, as indices into ``FlatLevels``

    @property
    def lengths(self) -> range:
        """The context length of each column."""
        return range(self.contexts.shape[1], 0, -1)


class NgramTable:
    """Interpolated Kneser-Ney probabilities of a fitted model, from compact arrays."""

    def __init__(self, order: int, vocab_size: int, start_id: int, levels: Sequence[ContextLevel]):
        if len(levels) != order:
            raise ValueError(f"an order-{order} table needs {order} context levels, got {len(levels)}")
        for k in range(1, order):
            if levels[k - 1].keys.size * vocab_size >= 2**63:
                raise ValueError(f"{levels[k - 1].keys.size} contexts of {k - 1} words over {vocab_size} words "
                                 "do not fit an int64 key")
        self.order = order
        self.vocab_size = vocab_size
        self.start_id = start_id
        self.levels = list(levels)
        self._root = _root(self.levels)
        # the one-word context of each word (-1: none), read directly instead of searched for
        self._one_word = self.levels[1].find_all(self._root * vocab_size + np.arange(vocab_size)) if order > 1 else None
        # built here, once: a table loaded before the server forks is then shared by its workers,
        # not copied into each; the levels of its columns become views into it
        lengths = range(order - 1, 0, -1)
        self.flat, viewed = FlatLevels.of([self.levels[k] for k in lengths])
        for k, level in zip(lengths, viewed):
            self.levels[k] = level
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
        levels: list[ContextLevel] = []
        for k in range(order):
            grams = np.array(list(discounted[k].keys()), dtype=np.int64).reshape(len(discounted[k]), k + 1)
            values = np.fromiter(discounted[k].values(), dtype=np.float64, count=len(discounted[k]))
            ctx = np.array(list(contexts[k].keys()), dtype=np.int64).reshape(len(contexts[k]), k)
            weights = np.array(list(contexts[k].values()), dtype=np.float64).reshape(len(contexts[k]), 2)
            levels.append(_level_from_arrays(levels, vocab_size, grams, values, ctx, weights))
        return cls(order, vocab_size, start_id, levels)

    def to_payload(self) -> dict:
        """Plain arrays and numbers, for the model file."""
        return {"order": self.order, "vocab_size": self.vocab_size, "start_id": self.start_id,
                "keys": KEY_SCHEME, "levels": [level.to_payload() for level in self.levels]}

    @classmethod
    def from_payload(cls, payload: dict) -> "NgramTable":
        """From ``to_payload``'s dict; the base-C keys of older files are chained on the way in."""
        levels = [ContextLevel(**{name: np.asarray(value) for name, value in level.items()})
                  for level in payload["levels"]]
        vocab_size = int(payload["vocab_size"])
        scheme = payload.get("keys")
        if scheme is None:
            levels = _chained_from_base_keys(levels, vocab_size)
        elif scheme != KEY_SCHEME:
            raise ValueError(f"unknown n-gram key scheme {scheme!r}")
        return cls(int(payload["order"]), vocab_size, int(payload["start_id"]), levels)

    # ---------------------------------------------------------------------- probabilities
    def _contexts_of(self, history: Sequence[int]) -> Iterable[tuple[ContextLevel, int]]:
        """(level, context index) from the empty context up to the longest seen one."""
        context = list(history[max(0, len(history) - self.order + 1) :])
        index = self.levels[0].find(0)
        for k in range(len(context) + 1):
            if k > 0:
                index = self.levels[k].find(index * self.vocab_size + int(context[-k]))
            if index < 0:  # an unseen context: no longer one can have been seen either
                return
            yield self.levels[k], index

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
        p = self.unigram_level() * factor
        for level, i, weight in sparse:
            first, last = level.offsets[i], level.offsets[i + 1]
            p[level.words[first:last]] += level.discounted[first:last] * (level.inverse_total[i] * weight)
        return p

    def next_word_probs_batch(self, histories: Sequence[Sequence[int]] | NewestFirst) -> np.ndarray:
        """``next_word_probs`` of every history, one row each (B x C), bit for bit the same.

        The same sums in the same order, level by level for all rows at once (``seen_batch``):
        each level's sparse counts are added to all rows that have a context there before the
        next shorter level's.
        """
        seen = self.seen_batch(histories)
        p = self.unigram_level()[np.newaxis, :] * seen.factor[:, np.newaxis]
        for column, k in enumerate(seen.lengths):
            rows = np.flatnonzero(seen.contexts[:, column] >= 0)
            level = self.levels[k]
            counts, entries = level.slices(seen.contexts[rows, column])
            p[np.repeat(rows, counts), level.words[entries]] += \
                level.discounted[entries] * np.repeat(seen.scale[rows, column], counts)
        return p

    def seen_batch(self, histories: Sequence[Sequence[int]] | NewestFirst) -> SeenContexts:
        """Each history's seen contexts with their weights, and the unigram level's factor: the
        parts ``next_word_probs`` sums, for all histories at once.

        The weights are running products of the backoff weights from the longest context down,
        in ``next_word_probs``'s order (an unseen context's weight is 1, which changes no bit).
        They are built one context length per row (contiguous), then seen transposed."""
        contexts = self.contexts_batch(histories)[:, :0:-1]
        flat = self.flat
        at = contexts.T + flat.base[:, None]  # (order - 1, B), longest first; contiguous rows
        backoff = flat.backoff.take(at)
        after = backoff.cumprod(axis=0)  # the unigram level's factor after each length
        scale = flat.inverse_total.take(at)
        scale[1:] *= after[:-1]
        return SeenContexts(after[-1] if after.shape[0] else np.ones(contexts.shape[0]), contexts, scale.T, at)

    def contexts_batch(self, histories: Sequence[Sequence[int]] | NewestFirst) -> np.ndarray:
        """The index of each history's context at every length 0 .. order - 1 (B x order; -1
        where never seen): one binary search per length for all histories."""
        tails = histories if isinstance(histories, NewestFirst) else NewestFirst.of(histories, self.order - 1)
        return self.contexts_found(tails.words, tails.lengths)

    def contexts_found(self, newest_first: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The index of each row's context at every length 0 .. order - 1 (-1 where never seen);
        row r's history is ``newest_first[r, :lengths[r]]``, newest word first, at most order - 1 words."""
        return walk_contexts(self.levels, self.vocab_size, newest_first, lengths, self._root, self._one_word)

    def unigram_level(self) -> np.ndarray:
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


def _root(levels: Sequence[ContextLevel]) -> int:
    """The index of the empty context (-1 in a table without one)."""
    return levels[0].find(0) if levels[0].keys.size else -1


def walk_contexts(levels: Sequence[ContextLevel], base: int, newest_first: np.ndarray, lengths: np.ndarray,
                  root: int | None = None, one_word: np.ndarray | None = None) -> np.ndarray:
    """The index of each row's context at every length 0 .. m (-1 where never seen), following
    the key chain from the empty context; row r's words are ``newest_first[r, :lengths[r]]``.
    ``one_word``: the one-word context of each word, if known (saves a search).

    Every row is walked to the full length and the lengths applied at the end (a context at
    length k depends only on the k newest words): fewer NumPy calls than masking each length."""
    rows, reach = newest_first.shape
    found = np.empty((reach + 1, rows), dtype=np.int64)  # one contiguous row per length
    found[0] = _root(levels) if root is None else root
    for k in range(1, reach + 1):
        if k == 1 and one_word is not None:
            one_word.take(newest_first[:, 0], out=found[1])
            continue
        # keys are >= 0, so below a parent of -1 (a key < 0) nothing is found
        keys = found[k - 1] * base
        keys += newest_first[:, k - 1]
        found[k] = levels[k].find_all(keys)
    if lengths.min(initial=reach) < reach:
        found[1:][_lengths_up_to(reach) > lengths] = -1
    return found.T


@lru_cache(maxsize=4)
def _lengths_up_to(reach: int) -> np.ndarray:
    """The context lengths 1 .. reach as a column (read only)."""
    lengths = np.arange(1, reach + 1)[:, None]
    lengths.flags.writeable = False
    return lengths


def _chain_keys(levels: Sequence[ContextLevel], base: int, contexts: np.ndarray) -> np.ndarray:
    """The key of each context (rows of k words, oldest first) given the levels below k; -1 for
    a context whose suffix is not among them."""
    count, k = contexts.shape
    if k == 0:
        return np.zeros(count, dtype=np.int64)
    suffix = contexts[:, :0:-1]  # (w_2 .. w_k), newest first
    parents = walk_contexts(levels, base, suffix, np.full(count, k - 1, dtype=np.int64))[:, k - 1]
    return np.where(parents >= 0, parents * base + contexts[:, 0], -1)


def _level_from_arrays(
    below: Sequence[ContextLevel], base: int, grams: np.ndarray, values: np.ndarray, contexts: np.ndarray,
    weights: np.ndarray,
) -> ContextLevel:
    """One level from its n-grams (rows, oldest word first) with their discounted counts, and its
    contexts with (1 / total, backoff), keyed through the levels below it."""
    k = contexts.shape[1]
    ctx_keys = _chain_keys(below, base, contexts)
    reachable = ctx_keys >= 0
    ctx_keys, weights = ctx_keys[reachable], weights[reachable]
    by_key = np.argsort(ctx_keys)
    ctx_keys, weights = ctx_keys[by_key], weights[by_key]
    gram_keys = _chain_keys(below, base, grams[:, :k])
    kept = gram_keys >= 0
    gram_keys, words, values = gram_keys[kept], grams[kept, k], values[kept]
    order = np.lexsort((words, gram_keys))
    gram_keys, words, values = gram_keys[order], words[order], values[order]
    offsets = np.searchsorted(gram_keys, ctx_keys, side="left")
    offsets = np.append(offsets, gram_keys.size).astype(np.int64)
    return ContextLevel(ctx_keys, offsets, weights[:, 0].copy(), weights[:, 1].copy(), words.astype(np.int32), values)


def _chained_from_base_keys(levels: Sequence[ContextLevel], base: int) -> list[ContextLevel]:
    """Levels keyed by the words as digits in base C (older files), re-keyed and re-sorted."""
    chained: list[ContextLevel] = []
    for k, level in enumerate(levels):
        contexts = np.zeros((level.keys.size, k), dtype=np.int64)
        rest = level.keys.astype(np.int64)
        for column in range(k - 1, -1, -1):
            rest, contexts[:, column] = np.divmod(rest, base)
        keys = _chain_keys(chained, base, contexts)
        reachable = np.flatnonzero(keys >= 0)
        by_key = reachable[np.argsort(keys[reachable])]
        chained.append(level.select(by_key, keys[by_key]))
    return chained

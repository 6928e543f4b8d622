"""Sentence generation: one hidden-state step per word, with temperature, top-k and top-p.

The hidden state is carried forward, so a prefix is read once and each new word costs one
step. Random draws come only from a ``numpy.random.Generator`` seeded per request, so the same
seed gives the same text on every worker.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from models.rnn import RNN
from models.vocabulary import Vocabulary


@dataclass(frozen=True)
class SamplingParams:
    """How to choose each next word. ``top_k``/``top_p`` of None mean no cut."""

    max_new_tokens: int = 50
    min_words: int = 0
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    do_sample: bool = True


@dataclass
class SentenceSample:
    """One generated sentence: prefix and new word indices and each new word's log-probability."""

    prefix_ids: list[int]
    new_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish_reason: str = "length"


@dataclass(frozen=True)
class SampledWord:
    """One step of ``Sampler.iter_sentence``: the chosen word (SENTENCE_END at the end of a
    sentence) with its model log-probability and, if asked for, the likeliest alternatives."""

    word_id: int
    logprob: float
    alternatives: tuple[tuple[int, float], ...] = ()


def penalize_repetition(logp: np.ndarray, seen_ids: Sequence[int], penalty: float) -> np.ndarray:
    """``logp`` with the log-probability of every word already seen multiplied by ``penalty``
    (CTRL's rule for negative scores): > 1 makes repeats less likely, < 1 more likely.

    A copy when anything changes; ``logp`` itself (not to be written to) when nothing does.
    """
    if not seen_ids or penalty == 1.0:
        return logp
    scores = logp.copy()
    scores[np.unique(np.asarray(seen_ids, dtype=np.int64))] *= penalty
    return scores


def top_alternatives(logp: np.ndarray, n: int) -> tuple[tuple[int, float], ...]:
    """The ``n`` likeliest next words as (index, log-probability), likeliest first."""
    if n <= 0:
        return ()
    n = min(n, logp.size)
    best = np.argpartition(-logp, n - 1)[:n]
    best = best[np.argsort(-logp[best], kind="stable")]
    return tuple((int(i), float(logp[i])) for i in best)


class Sampler:
    """Draws sentences from a trained RNN."""

    def __init__(self, model: RNN, vocab: Vocabulary):
        if len(vocab) != model.vocab_size:
            raise ValueError("vocabulary and model sizes differ")
        self.model = model
        self.vocab = vocab
        # work in float64 for the probabilities so a draw never fails on rounding
        self._U = model.U.astype(np.float64)
        self._W = model.W.astype(np.float64)
        self._V = model.V.astype(np.float64)
        self._b = model.b.astype(np.float64) if model.bias else np.zeros(model.hidden_size)
        self._c = model.c.astype(np.float64) if model.bias else np.zeros(model.vocab_size)

    def _step(self, word_id: int, h: np.ndarray, logp: np.ndarray) -> np.ndarray:
        """The next hidden state; fills ``logp`` with log-probabilities of the next word.

        ``logp`` belongs to the caller (one buffer per sentence), so concurrent calls are safe.
        """
        h = np.tanh(self._U[:, word_id] + self._W @ h + self._b)
        np.matmul(self._V, h, out=logp)
        logp += self._c
        logp -= logp.max()
        logp -= np.log(np.exp(logp).sum())
        return h

    def _choose(self, logp: np.ndarray, params: SamplingParams, allow_end: bool, rng: np.random.Generator) -> int:
        scores = logp.copy()
        scores[self.vocab.unknown_id] = -np.inf
        scores[self.vocab.start_id] = -np.inf
        if not allow_end:
            scores[self.vocab.end_id] = -np.inf
        if not params.do_sample:
            return int(np.argmax(scores))
        # shift before dividing: the best word stays at 0 and, for a tiny temperature, the
        # others go to -inf (a harmless overflow), so the draw becomes greedy, never NaN
        with np.errstate(over="ignore"):
            scores = (scores - scores.max()) / params.temperature
        if params.top_k is not None and params.top_k < scores.size:
            kth = np.partition(scores, -params.top_k)[-params.top_k]
            scores[scores < kth] = -np.inf
        probs = np.exp(scores - scores.max())
        probs /= probs.sum()
        if params.top_p is not None and params.top_p < 1.0:
            order = np.argsort(-probs, kind="stable")
            cumulative = np.cumsum(probs[order])
            keep = int(np.searchsorted(cumulative, params.top_p) + 1)
            cut = np.zeros_like(probs)
            cut[order[:keep]] = probs[order[:keep]]
            probs = cut / cut.sum()
        # inverse-CDF draw in float64: robust where np.random.multinomial rejects sums > 1
        cdf = np.cumsum(probs)
        return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), probs.size - 1))

    def sample_sentence(self, prefix_ids: list[int], params: SamplingParams, rng: np.random.Generator) -> SentenceSample:
        """Continue SENTENCE_START + prefix until SENTENCE_END or ``max_new_tokens`` new words."""
        result = SentenceSample(prefix_ids=list(prefix_ids))
        h = np.zeros(self.model.hidden_size)
        logp = np.empty(self.model.vocab_size)
        for word_id in [self.vocab.start_id, *prefix_ids]:
            h = self._step(word_id, h, logp)
        while len(result.new_ids) < params.max_new_tokens:
            allow_end = len(prefix_ids) + len(result.new_ids) >= params.min_words
            choice = self._choose(logp, params, allow_end, rng)
            if choice == self.vocab.end_id:
                result.finish_reason = "eos_token"
                break
            result.new_ids.append(choice)
            result.logprobs.append(float(logp[choice]))
            h = self._step(choice, h, logp)
        return result

    def iter_sentence(
        self,
        prefix_ids: list[int],
        params: SamplingParams,
        rng: np.random.Generator,
        repetition_penalty: float = 1.0,
        top_n: int = 0,
    ) -> Iterator[SampledWord]:
        """``sample_sentence`` one word at a time, for streaming: yields each new word as it is
        chosen, then SENTENCE_END if the sentence ended before ``max_new_tokens`` words.

        With the defaults it draws exactly what ``sample_sentence`` draws. The repetition
        penalty applies to the words of this sentence so far, its starting words included;
        ``logprob`` and ``alternatives`` are the model's own (before penalty and temperature).
        """
        h = np.zeros(self.model.hidden_size)
        logp = np.empty(self.model.vocab_size)
        seen = [*prefix_ids]
        for word_id in [self.vocab.start_id, *prefix_ids]:
            h = self._step(word_id, h, logp)
        for _ in range(params.max_new_tokens):
            scores = penalize_repetition(logp, seen, repetition_penalty)
            choice = self._choose(scores, params, len(seen) >= params.min_words, rng)
            yield SampledWord(choice, float(logp[choice]), top_alternatives(logp, top_n))
            if choice == self.vocab.end_id:
                return
            seen.append(choice)
            h = self._step(choice, h, logp)

"""Sentence generation: one hidden-state step per word, with temperature, top-k and top-p.

The hidden state is carried forward, so a prefix is read once and each new word costs one
step. Random draws come only from a ``numpy.random.Generator`` seeded per request, so the same
seed gives the same text on every worker.

Plain sampling (no top-k, no top-p) takes a short path: with the full softmax, one float32
product with ``V`` and one pass of exponentials serve both the draw and the reported
log-probability; with the class-based output layer and temperature 1, it draws the class, then
the word within it, and never scores the other classes' words (an exact draw from the model).
Greedy choice, top-k, top-p and other temperatures (which reshape the joint distribution, not
each factor) need every word's log-probability and compute them all.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from models.class_output import all_word_log_probs, log_softmax
from models.mixture import NgramMixture
from models.recurrent_lm import RecurrentLM
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


class SampledWord(NamedTuple):
    """One step of ``Sampler.iter_sentence``: the chosen word (SENTENCE_END at the end of a
    sentence) with its model log-probability and, if asked for, the likeliest alternatives.
    (A named tuple: one is made per generated word, and it is cheaper to build than a dataclass.)"""

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
    """Draws sentences from a trained model (an RNN or a GRU: the model supplies its step)."""

    def __init__(self, model: RecurrentLM, vocab: Vocabulary, mixture: NgramMixture | None = None):
        if len(vocab) != model.vocab_size:
            raise ValueError("vocabulary and model sizes differ")
        self.model = model
        self.vocab = vocab
        self.mixture = mixture
        # the hidden state and the big product with V run in float32, as in training (half the
        # memory traffic of float64); probabilities are then handled in float64, or in float32
        # with float64 sums, so a draw never fails on rounding
        self._step = model.step_function(np.float32)  # the cell's recurrence, on float32 copies
        self._V32 = np.ascontiguousarray(model.V, dtype=np.float32)
        self._c32 = (model.c if model.bias else np.zeros(model.vocab_size)).astype(np.float32)
        self._V = model.V.astype(np.float64)
        self._c = model.c.astype(np.float64) if model.bias else np.zeros(model.vocab_size)
        self.classes = model.classes
        if self.classes is not None:
            self._V_class = model.V_class.astype(np.float64)
            self._c_class = model.c_class.astype(np.float64) if model.bias else np.zeros(self.classes.n_classes)

    def _advance(self, word_id: int, h: np.ndarray) -> np.ndarray:
        """The hidden state after reading ``word_id``."""
        return self._step(word_id, h)

    def _word_log_probs(self, h: np.ndarray, logp: np.ndarray) -> None:
        """Fill ``logp`` with every word's log-probability of coming next.

        ``logp`` belongs to the caller (one buffer per sentence), so concurrent calls are safe.
        """
        if self.classes is not None:
            logp[:] = all_word_log_probs(h[None], self._V, self._c, self._V_class, self._c_class, self.classes)[0]
            return
        np.matmul(self._V, h, out=logp)
        logp += self._c
        logp -= logp.max()
        logp -= np.log(np.exp(logp).sum())

    def _masked(self, scores: np.ndarray, allow_end: bool, unknown: int, start: int, end: int) -> np.ndarray:
        """A copy of ``scores`` with UNKNOWN_TOKEN, SENTENCE_START and (unless allowed) SENTENCE_END at -inf."""
        scores = scores.copy()
        scores[[unknown, start]] = -np.inf
        if not allow_end:
            scores[end] = -np.inf
        return scores

    def _draw_from_full_softmax(
        self, h: np.ndarray, params: SamplingParams, allow_end: bool, rng: np.random.Generator
    ) -> tuple[int, float]:
        """Plain sampling with the full softmax: the word and its log-probability under the model."""
        v = self.vocab
        z = self._shifted_logits(h)
        weights = np.exp(z)  # float32 is plenty for a draw; sums are taken in float64
        block_sums = _block_sums(weights)
        total = float(block_sums.sum(dtype=np.float64))
        log_norm = math.log(total)
        if params.temperature == 1.0:
            masked = [v.unknown_id, v.start_id] if allow_end else [v.unknown_id, v.start_id, v.end_id]
            for word in masked:
                total -= float(weights[word])
                block_sums[word // DRAW_BLOCK] -= weights[word]
                weights[word] = 0.0
            if total > 0:  # else everything left underflowed: use shifted scores below
                choice = _draw(weights, rng, block_sums)
                return choice, float(z[choice]) - log_norm
        scores = self._masked(z.astype(np.float64), allow_end, v.unknown_id, v.start_id, v.end_id)
        choice = _draw(np.exp(_tempered(scores, params.temperature)), rng)
        return choice, float(z[choice]) - log_norm

    def _shifted_logits(self, h: np.ndarray) -> np.ndarray:
        """The full softmax's logits V h + c (float32), the largest shifted to 0."""
        z = self._V32 @ h
        z += self._c32
        z -= z.max()
        return z

    def _draw_from_mixture(
        self, h: np.ndarray, history: list[int], allow_end: bool, rng: np.random.Generator
    ) -> tuple[int, float]:
        """Plain sampling at temperature 1 from the full-softmax RNN interpolated with its n-gram
        model: the word and its log-probability under the mixture."""
        v = self.vocab
        rnn = np.exp(self._shifted_logits(h), dtype=np.float64)
        rnn /= rnn.sum()
        probs = self.mixture.next_word_probs(rnn, history)
        masked = [v.unknown_id, v.start_id] if allow_end else [v.unknown_id, v.start_id, v.end_id]
        probs[masked] = 0.0  # a chosen word is never a masked one, so its probability stays as it was
        choice = _draw(probs, rng)
        return choice, math.log(probs[choice])

    def _choose(self, logp: np.ndarray, params: SamplingParams, allow_end: bool, rng: np.random.Generator) -> int:
        v = self.vocab
        scores = self._masked(logp, allow_end, v.unknown_id, v.start_id, v.end_id)
        if not params.do_sample:
            return int(np.argmax(scores))
        scores = _tempered(scores, params.temperature)
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
        return _draw(probs, rng)

    def _choose_class_then_word(
        self, h: np.ndarray, params: SamplingParams, allow_end: bool, rng: np.random.Generator
    ) -> tuple[int, float]:
        """Draw a class, then a word of that class; the word and its log-probability under the model.

        The special tokens have classes of their own, so masking them masks their classes.
        Used at temperature 1 only, where the two draws together are exactly a draw from the model.
        """
        classes, v = self.classes, self.vocab
        class_logp = log_softmax(self._V_class @ h + self._c_class)
        word_class = classes.word_class
        scores = self._masked(class_logp, allow_end, word_class[v.unknown_id], word_class[v.start_id],
                              word_class[v.end_id])
        k = _draw(np.exp(scores - scores.max()), rng)
        words = classes.words_of(k)
        word_logp = log_softmax(self._V[words] @ h + self._c[words])
        j = _draw(np.exp(word_logp), rng)
        return words.start + j, float(class_logp[k] + word_logp[j])

    def _draw_directly(
        self, h: np.ndarray, params: SamplingParams, allow_end: bool, rng: np.random.Generator
    ) -> tuple[int, float]:
        if self.classes is None:
            return self._draw_from_full_softmax(h, params, allow_end, rng)
        return self._choose_class_then_word(h, params, allow_end, rng)

    def _is_plain(self, params: SamplingParams) -> bool:
        """Sampling that needs no probability but the chosen word's: the short path applies."""
        plain = params.do_sample and params.top_k is None and params.top_p is None
        return plain and (self.classes is None or params.temperature == 1.0)

    def iter_sentence(
        self,
        prefix_ids: list[int],
        params: SamplingParams,
        rng: np.random.Generator,
        repetition_penalty: float = 1.0,
        top_n: int = 0,
    ) -> Iterator[SampledWord]:
        """Continue SENTENCE_START + prefix one word at a time, for streaming: yields each new
        word as it is chosen, then SENTENCE_END if the sentence ended before ``max_new_tokens``.

        The repetition penalty applies to the words of this sentence so far, its starting words
        included; ``logprob`` and ``alternatives`` are the model's own (before penalty and
        temperature).
        """
        h = np.zeros(self.model.hidden_size, dtype=np.float32)
        logp = np.empty(self.model.vocab_size)
        seen = [*prefix_ids]
        plain = self._is_plain(params) and repetition_penalty == 1.0 and top_n == 0
        mixed_draws = self.mixture is not None and plain and self.classes is None and params.temperature == 1.0
        plain = plain and self.mixture is None
        for word_id in [self.vocab.start_id, *prefix_ids]:
            h = self._advance(word_id, h)
        for _ in range(params.max_new_tokens):
            allow_end = len(seen) >= params.min_words
            alternatives: tuple[tuple[int, float], ...] = ()
            if mixed_draws:
                choice, logprob = self._draw_from_mixture(h, [self.vocab.start_id, *seen], allow_end, rng)
            elif plain:
                choice, logprob = self._draw_directly(h, params, allow_end, rng)
            else:
                self._word_log_probs(h, logp)
                if self.mixture is not None:
                    logp = self.mixture.next_word_log_probs(logp, [self.vocab.start_id, *seen])
                scores = penalize_repetition(logp, seen, repetition_penalty)
                choice = self._choose(scores, params, allow_end, rng)
                logprob, alternatives = float(logp[choice]), top_alternatives(logp, top_n)
            yield SampledWord(choice, logprob, alternatives)
            if choice == self.vocab.end_id:
                return
            seen.append(choice)
            h = self._advance(choice, h)

    def sample_sentence(self, prefix_ids: list[int], params: SamplingParams, rng: np.random.Generator) -> SentenceSample:
        """Continue SENTENCE_START + prefix until SENTENCE_END or ``max_new_tokens`` new words."""
        result = SentenceSample(prefix_ids=list(prefix_ids))
        for word in self.iter_sentence(prefix_ids, params, rng):
            if word.word_id == self.vocab.end_id:
                result.finish_reason = "eos_token"
                break
            result.new_ids.append(word.word_id)
            result.logprobs.append(word.logprob)
        return result

def _tempered(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Log-weights divided by the temperature, the best shifted to 0 first: for a tiny temperature
    the others then go to -inf (a harmless overflow), so the draw becomes greedy, never NaN."""
    with np.errstate(over="ignore"):
        return (scores - scores.max()) / temperature


DRAW_BLOCK = 64
BELOW_ONE = float(np.nextafter(1.0, 0.0))


def _draw(weights: np.ndarray, rng: np.random.Generator, block_sums: np.ndarray | None = None) -> int:
    """An index drawn in proportion to ``weights`` (>= 0, not necessarily normalised).

    An inverse-CDF draw in float64: robust where ``Generator.multinomial`` rejects sums above 1.
    Over a large vocabulary, in two levels (a running sum over blocks of 64 words, then within
    the chosen block): NumPy's cumsum is slow, and this needs it over about 2 sqrt(C) numbers.
    ``block_sums`` (from ``_block_sums``) saves summing the blocks again.
    """
    if weights.size <= 4 * DRAW_BLOCK:
        return _inverse_cdf(weights, rng.random())
    block_cdf = np.cumsum(_block_sums(weights) if block_sums is None else block_sums, dtype=np.float64)
    target = rng.random() * block_cdf[-1]
    block = min(int(np.searchsorted(block_cdf, target, side="right")), block_cdf.size - 1)
    first = block * DRAW_BLOCK
    inner = np.cumsum(weights[first : first + DRAW_BLOCK], dtype=np.float64)
    if inner[-1] <= 0:  # only by rounding at a block boundary
        return _inverse_cdf(weights, target / block_cdf[-1])
    # where the target fell inside the block; kept below the block's total, so a zero weight
    # at the block's end is never chosen
    offset = min(max(target - (block_cdf[block - 1] if block else 0.0), 0.0), inner[-1] * BELOW_ONE)
    return first + int(np.searchsorted(inner, offset, side="right"))


def _block_sums(weights: np.ndarray) -> np.ndarray:
    """Sums of consecutive blocks of DRAW_BLOCK weights (the last block may be shorter)."""
    return np.add.reduceat(weights, _block_starts(weights.size))


@lru_cache(maxsize=8)
def _block_starts(size: int) -> np.ndarray:
    return np.arange(0, size, DRAW_BLOCK)


def _inverse_cdf(weights: np.ndarray, u: float) -> int:
    """The index where ``u`` (in [0, 1)) falls in the running sum of ``weights``."""
    cdf = np.cumsum(weights)
    return int(min(np.searchsorted(cdf, u * cdf[-1], side="right"), weights.size - 1))

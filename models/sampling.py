"""Sentence generation, one sequence at a time: the model's ``step`` per word, with temperature,
top-k, top-p, typical-p, greedy choice, a repetition penalty, and OpenAI's frequency and
presence penalties and logit bias (the transforms of ``models.logits_processors``).

The state is carried forward, so a prefix is read once and each new word costs one step. Random
draws come only from a ``numpy.random.Generator`` seeded per request, so the same seed gives the
same text on every worker.

Plain sampling (no cut, no penalty, no bias) asks the output layer for a draw (its short
paths: one float32 product and one pass of exponentials for the full softmax; class then word
for the class softmax at temperature 1). Greedy choice, top-k, top-p and the other temperatures
of the class softmax (which reshape the joint distribution, not each factor) need every word's
log-probability and choose here.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from models.draws import draw_index, tempered
from models.logits_processors import (
    add_logit_bias, bias_vector, penalize_frequency_presence, typical_filter, word_counts,
)
from models.mixture import NgramMixture
from models.mixture_draws import MixtureDrawer
from models.recurrent_lm import RecurrentLM
from models.vocabulary import Vocabulary


@dataclass(frozen=True)
class SamplingParams:
    """How to choose each next word. ``top_k``/``top_p``/``typical_p`` of None mean no cut; the
    penalties count the words this sentence has generated (``models.logits_processors``);
    ``logit_bias`` holds (word id, amount) pairs added to the scores."""

    max_new_tokens: int = 50
    min_words: int = 0
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    do_sample: bool = True
    typical_p: float | None = None
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()

    @property
    def transforms_scores(self) -> bool:
        """Whether a penalty or a bias changes the scores before the choice."""
        return bool(self.frequency_penalty or self.presence_penalty or self.logit_bias)


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


def transformed_scores(scores: np.ndarray, params: SamplingParams, generated_ids: Sequence[int]) -> np.ndarray:
    """The scores after OpenAI's frequency and presence penalties (over ``generated_ids``, the
    words this sentence has generated) and its logit_bias."""
    if params.frequency_penalty or params.presence_penalty:
        counts = word_counts(generated_ids, scores.size)
        scores = penalize_frequency_presence(scores, counts, params.frequency_penalty, params.presence_penalty)
    if params.logit_bias:
        scores = add_logit_bias(scores, bias_vector(params.logit_bias, scores.size))
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
    """Draws sentences from a trained model, one sequence at a time (B = 1 of the model's
    batch-first contract): the model's ``step`` and ``readout``, its output layer's ``draw`` and
    ``log_probs``, and the choice rules above them."""

    def __init__(self, model: RecurrentLM, vocab: Vocabulary, mixture: NgramMixture | None = None):
        if len(vocab) != model.vocab_size:
            raise ValueError("vocabulary and model sizes differ")
        self.model = model.for_generation()  # float32, as in training: half the memory traffic of float64
        self.vocab = vocab
        self.mixture = mixture
        specials = (vocab.unknown_id, vocab.start_id, vocab.end_id)  # the words draws ban (``_banned``)
        # the batched decoder's draw from the mixture (``models.batch_sampling``); this Sampler
        # draws with it for the full softmax alone, and from every word's probability for the
        # class softmax: the reference the block-wise class draw is held to
        self.mixture_drawer = MixtureDrawer(self.model.output, mixture, specials) if mixture is not None else None

    def _banned(self, allow_end: bool) -> list[int]:
        """Words never generated: UNKNOWN_TOKEN, SENTENCE_START and, unless allowed, SENTENCE_END."""
        v = self.vocab
        return [v.unknown_id, v.start_id] if allow_end else [v.unknown_id, v.start_id, v.end_id]

    def _advance(self, word_id: int, state: np.ndarray) -> np.ndarray:
        return self.model.stable_step(np.array([word_id]), state)

    def _draw_from_mixture(
        self, h: np.ndarray, history: list[int], recent: list[int], allow_end: bool, rng: np.random.Generator
    ) -> tuple[int, float]:
        """Plain sampling at temperature 1 from the full-softmax RNN interpolated with its n-gram
        model and cache: the word and its log-probability under the mixture
        (``models.mixture_draws``, the batched decoder's draw with one row)."""
        words, logprobs = self.mixture_drawer.draw(h, [history], np.array([rng.random()]), [self._banned(allow_end)],
                                                   [recent])
        return int(words[0]), float(logprobs[0])

    def _choose(self, logp: np.ndarray, params: SamplingParams, allow_end: bool, rng: np.random.Generator) -> int:
        scores = logp.copy()
        scores[self._banned(allow_end)] = -np.inf
        if not params.do_sample:
            return int(np.argmax(scores))
        scores = tempered(scores, params.temperature)
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
        if params.typical_p is not None and params.typical_p < 1.0:
            probs = typical_filter(probs, params.typical_p)
        return draw_index(probs, rng)

    def _is_plain(self, params: SamplingParams) -> bool:
        """Sampling that needs no probability but the chosen word's: the output layer draws."""
        plain = (params.do_sample and params.top_k is None and params.top_p is None and params.typical_p is None
                 and not params.transforms_scores)
        return plain and self.model.output.draws_at(params.temperature)

    def iter_sentence(
        self,
        prefix_ids: list[int],
        params: SamplingParams,
        rng: np.random.Generator,
        repetition_penalty: float = 1.0,
        top_n: int = 0,
        recent: Sequence[int] = (),
    ) -> Iterator[SampledWord]:
        """Continue SENTENCE_START + prefix one word at a time, for streaming: yields each new
        word as it is chosen, then SENTENCE_END if the sentence ended before ``max_new_tokens``.

        The repetition penalty applies to the words of this sentence so far, its starting words
        included; ``logprob`` and ``alternatives`` are the model's own (before penalty and
        temperature). ``recent``: the text before this sentence, which the mixture's cache reads
        (``models.recent_text``; the sentence's own words follow it there).
        """
        model, output = self.model, self.model.output
        state = model.initial_state(1, np.float32)
        seen = [*prefix_ids]
        plain = self._is_plain(params) and repetition_penalty == 1.0 and top_n == 0
        mixed_draws = self.mixture is not None and plain and output.KIND == "full" and params.temperature == 1.0
        plain = plain and self.mixture is None
        for word_id in [self.vocab.start_id, *prefix_ids]:
            state = self._advance(word_id, state)
        for _ in range(params.max_new_tokens):
            allow_end = len(seen) >= params.min_words
            alternatives: tuple[tuple[int, float], ...] = ()
            h = model.readout(state)
            if mixed_draws:
                choice, logprob = self._draw_from_mixture(h, [self.vocab.start_id, *seen], [*recent, *seen],
                                                          allow_end, rng)
            elif plain:
                words, logprobs = output.draw(h, [rng], [self._banned(allow_end)], params.temperature)
                choice, logprob = int(words[0]), float(logprobs[0])
            else:
                logp = output.log_probs(h)[0]
                if self.mixture is not None:
                    logp = self.mixture.next_word_log_probs(logp, [self.vocab.start_id, *seen], [*recent, *seen])
                scores = penalize_repetition(logp, seen, repetition_penalty)
                if params.transforms_scores:
                    scores = transformed_scores(scores, params, seen[len(prefix_ids):])
                choice = self._choose(scores, params, allow_end, rng)
                logprob, alternatives = float(logp[choice]), top_alternatives(logp, top_n)
            yield SampledWord(choice, logprob, alternatives)
            if choice == self.vocab.end_id:
                return
            seen.append(choice)
            state = self._advance(choice, state)

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

"""Scoring text with a trained RNN: per-word log-probabilities, unknown words and perplexities.

Shared by the evaluation command and the HTTP service, and independent of both. Text is tokenized
as training reads a .txt file (paragraphs, Punkt sentences, lowercased words), and every token
after SENTENCE_START is predicted, SENTENCE_END included, so a text's perplexity is the figure
training reports for its validation text.
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.batching import scoring_batches, scoring_order, sentence_pairs
from models.mixture import NgramMixture
from models.recurrent_lm import RecurrentLM
from models.text import tokenize_document
from models.vocabulary import SENTENCE_END, Vocabulary


def perplexity_from(log_likelihood: float, tokens: int) -> float:
    """exp(mean negative log-likelihood per predicted token): the one definition used everywhere."""
    if tokens <= 0:
        raise ValueError("no tokens to score")
    return math.exp(-log_likelihood / tokens)


class DeadlinePassed(Exception):
    """Scoring was still running at the caller's deadline and stopped between two steps."""


def _check(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise DeadlinePassed


@dataclass(frozen=True)
class SentenceScore:
    """One sentence's predicted tokens (its words, lowercased, then SENTENCE_END).

    ``log_probs[i]`` is the natural log of the model's probability of ``tokens[i]`` given the
    tokens before it; for a word outside the vocabulary (``unknown[i]``) it is the probability of
    UNKNOWN_TOKEN, which is what the model reads and predicts in its place.
    """

    tokens: list[str]
    log_probs: list[float]
    unknown: list[bool]

    @property
    def log_likelihood(self) -> float:
        return math.fsum(self.log_probs)

    @property
    def perplexity(self) -> float:
        return perplexity_from(self.log_likelihood, len(self.tokens))


@dataclass(frozen=True)
class TextScore:
    """The sentences of a text, scored; totals are over all their predicted tokens."""

    sentences: list[SentenceScore]

    @property
    def tokens(self) -> int:
        return sum(len(s.tokens) for s in self.sentences)

    @property
    def unknown_words(self) -> int:
        return sum(sum(s.unknown) for s in self.sentences)

    @property
    def unk_rate(self) -> float:
        return self.unknown_words / self.tokens

    @property
    def log_likelihood(self) -> float:
        return math.fsum(s.log_likelihood for s in self.sentences)

    @property
    def perplexity(self) -> float:
        return perplexity_from(self.log_likelihood, self.tokens)


def score_sentences(
    model: RecurrentLM, sentences: Sequence[Sequence[int]], batch_size: int = 128, mixture: NgramMixture | None = None,
    deadline: float | None = None,
) -> list[np.ndarray]:
    """Log-probability of every token after SENTENCE_START, one float64 array per sentence, in input order.

    Runs the batched path (sentences grouped by length), then puts each batch column back in the
    place its sentence had in ``sentences``; with a ``mixture``, the RNN's probabilities are then
    interpolated with its n-gram model's and its cache's (the sentences read as one text, in order). Past ``deadline`` (``time.monotonic()``), checked before
    every batch and every sentence's interpolation, it raises DeadlinePassed.
    """
    if any(len(s) < 2 for s in sentences):
        raise ValueError("every sentence needs SENTENCE_START and at least one token to predict")
    inputs, targets = sentence_pairs(sentences)
    order = scoring_order(inputs)
    scores: list[np.ndarray] = [np.empty(0)] * len(sentences)
    first = 0
    for batch in scoring_batches(inputs, targets, batch_size):
        _check(deadline)
        grid = np.zeros(batch.mask.shape, dtype=np.float64)
        # token_log_probs lists the real tokens in row-major (time, column) order, as boolean indexing does
        grid[batch.mask.astype(bool)] = model.token_log_probs(batch.inputs, batch.targets, batch.mask)
        for column in range(grid.shape[1]):
            index = order[first + column]
            scores[index] = grid[: len(targets[index]), column].copy()
        first += grid.shape[1]
    if mixture is not None:
        mixed = []
        for sentence_scores in mixture.text_log_probs(scores, sentences):  # the sentences of one text, in order
            _check(deadline)
            mixed.append(sentence_scores)
        scores = mixed
    return scores


def score_text(
    model: RecurrentLM, vocab: Vocabulary, text: str, mixture: NgramMixture | None = None, deadline: float | None = None
) -> TextScore:
    """Tokenize ``text`` as training does and score every sentence; ValueError if it has no words,
    DeadlinePassed if still running at ``deadline``."""
    if len(vocab) != model.vocab_size:
        raise ValueError(f"the vocabulary has {len(vocab)} words, the model {model.vocab_size}")
    sentences = tokenize_document(text)
    if not sentences:
        raise ValueError("the text has no words to score")
    log_probs = score_sentences(model, [vocab.encode_sentence(words) for words in sentences], mixture=mixture,
                                deadline=deadline)
    return TextScore([
        SentenceScore([*words, SENTENCE_END], scores.tolist(), [w not in vocab for w in words] + [False])
        for words, scores in zip(sentences, log_probs)
    ])

"""The Kneser-Ney discounts the mixture wants, chosen on the development split.

Chen & Goodman's estimates (``training.kneser_ney``) make the n-gram model alone as likely as it
can be on unseen text. In the mixture the RNN already supplies the smooth, generalising part of
the distribution, so the n-gram model is worth most where it trusts its exact counts: the mixture
is likelier with other discounts than the model alone. Each order's three estimated discounts are
scaled by one factor (kept within 0 < D_j <= j); the factors are chosen by coordinate ascent over
FACTOR_MOVES, the RNN's weight re-chosen at every step (``training.interpolation.choose_weight``).
A move is kept only if it makes both halves of the development split (alternate sentences)
likelier, so the search stops where it would only fit the noise of one of them.

Every step scores the development tokens from their contexts' counts, gathered once from the
arranged counts (``training.ngram_fit``), with the table's own arithmetic: a step costs a few
vector operations over the development tokens, whatever the size of the corpus.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from training.kneser_ney import Discounts
from training.ngram_fit import ArrangedCounts, discounted_values

log = logging.getLogger(__name__)

# multiplicative moves tried on an order's factor at each step, and how many rounds over the orders
FACTOR_MOVES = (0.25, 0.35, 0.5, 0.7, 0.85, 1.2, 1.4, 2.0)
MAX_SWEEPS = 4


def scaled(discounts: Discounts, factor: float) -> Discounts:
    """The three discounts times ``factor``, each capped at its count (D_j <= j)."""
    return Discounts(min(discounts.one * factor, 1.0), min(discounts.two * factor, 2.0),
                     min(discounts.three_plus * factor, 3.0))


@dataclass(frozen=True)
class TokenCounts:
    """What the table's probabilities of some tokens need under any discounts, per token (rows) and context length
    (columns): whether the context is in the table, its n-gram's count, the context's total, its
    count-of-counts and its dropped n-grams (``training.ngram_fit.LevelCounts``)."""

    found: np.ndarray  # bool (tokens, order)
    counts: np.ndarray  # int64 (tokens, order), 0 where the n-gram is not kept
    total: np.ndarray  # float64 (tokens, order), 1 where the context is not found
    seen: np.ndarray  # (3, tokens, order)
    dropped: np.ndarray  # (4, tokens, order)
    uniform: float

    @classmethod
    def gather(cls, arranged: ArrangedCounts, sentences: Sequence[Sequence[int]]) -> "TokenCounts":
        """For every token after SENTENCE_START of these sentences, in order."""
        order, base = arranged.order, arranged.vocab_size
        reach = order - 1
        histories, words = [], []
        for sentence in sentences:
            for i in range(1, len(sentence)):
                histories.append(sentence[max(0, i - reach) : i][::-1])
                words.append(sentence[i])
        newest_first = np.zeros((len(words), reach), dtype=np.int64)
        lengths = np.array([len(h) for h in histories], dtype=np.int64)
        for row, history in enumerate(histories):
            newest_first[row, : len(history)] = history
        contexts = arranged.table().contexts_found(newest_first, lengths)
        words = np.asarray(words, dtype=np.int64)
        found = contexts >= 0
        shape = contexts.shape
        counts, total = np.zeros(shape, dtype=np.int64), np.ones(shape)
        seen, dropped = np.zeros((3, *shape), dtype=np.int64), np.zeros((4, *shape))
        for k, level in enumerate(arranged.levels):
            rows = np.flatnonzero(found[:, k])
            c = contexts[rows, k]
            # entries are sorted by (context, word): one search over context * C + word finds each n-gram
            owner = np.repeat(np.arange(level.keys.size, dtype=np.int64), np.diff(level.offsets))
            entry_keys = owner * base + level.words
            wanted = c * base + words[rows]
            at = np.minimum(np.searchsorted(entry_keys, wanted), max(entry_keys.size - 1, 0))
            hit = entry_keys[at] == wanted if entry_keys.size else np.zeros(rows.size, dtype=bool)
            counts[rows[hit], k] = level.counts[at[hit]]
            total[rows, k] = level.total[c]
            seen[:, rows, k] = level.seen[:, c]
            dropped[:, rows, k] = level.dropped[:, c]
        return cls(found, counts, total, seen, dropped, 1.0 / (base - 1))

    def probs(self, discounts: Sequence[Discounts]) -> np.ndarray:
        """The table's probability of each token under these discounts (``NgramTable.prob``'s sums)."""
        p = np.full(self.found.shape[0], self.uniform)
        for k, d in enumerate(discounts):
            rows = self.found[:, k]
            column = (self.counts[rows, k], self.total[rows, k], self.seen[:, rows, k], self.dropped[:, rows, k])
            discounted, inverse_total, backoff = discounted_values(d, *column)
            p[rows] = discounted * inverse_total + backoff * p[rows]
        return p


@dataclass(frozen=True)
class DiscountChoice:
    discounts: list[Discounts]
    factors: list[float]
    weight: float
    ngram_probs: np.ndarray  # the development tokens' under the chosen discounts
    estimated_log_likelihood: float  # the mixture's on the development tokens with the estimated discounts
    log_likelihood: float  # with the chosen ones


def tune_discounts(arranged: ArrangedCounts, sentences: Sequence[Sequence[int]], rnn_probs: np.ndarray,
                   choose_weight: Callable[[np.ndarray, np.ndarray], float]) -> DiscountChoice:
    """Per-order discount factors and the RNN weight that make the mixture likeliest on these
    development sentences (``rnn_probs``: the RNN's probability of each of their tokens)."""
    development = TokenCounts.gather(arranged, sentences)
    if development.found.shape[0] != rnn_probs.size:
        raise ValueError(f"{rnn_probs.size} RNN probabilities for {development.found.shape[0]} tokens")
    halves = np.repeat(np.arange(len(sentences)) % 2 == 0, [len(s) - 1 for s in sentences])

    def evaluate(factors: list[float]) -> tuple[np.ndarray, float, np.ndarray]:
        ngram = development.probs([scaled(d, f) for d, f in zip(arranged.estimated, factors)])
        weight = choose_weight(rnn_probs, ngram)
        log_probs = np.log(weight * rnn_probs + (1.0 - weight) * ngram)
        return np.array([log_probs[halves].sum(), log_probs[~halves].sum()]), weight, ngram

    factors = [1.0] * arranged.order
    best, weight, ngram = evaluate(factors)
    estimated = float(best.sum())
    for _ in range(MAX_SWEEPS):
        moved = False
        for k in range(arranged.order):
            for move in FACTOR_MOVES:
                trial = factors.copy()
                trial[k] *= move
                score, trial_weight, trial_ngram = evaluate(trial)
                if np.all(score > best):
                    factors, best, weight, ngram, moved = trial, score, trial_weight, trial_ngram, True
        if not moved:
            break
    discounts = [scaled(d, f) for d, f in zip(arranged.estimated, factors)]
    log.info("discount factors per order %s chosen on %s development tokens: mixture perplexity %.2f -> %.2f",
             [round(f, 3) for f in factors], f"{rnn_probs.size:,}", np.exp(-estimated / rnn_probs.size),
             np.exp(-best.sum() / rnn_probs.size))
    return DiscountChoice(discounts, factors, weight, ngram, estimated, float(best.sum()))

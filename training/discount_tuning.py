"""The Kneser-Ney discounts the mixture wants, chosen on the development split.

Chen & Goodman's estimates (``training.kneser_ney``) make the n-gram model alone as likely as it
can be on unseen text. In the mixture the RNN already supplies the smooth, generalising part of
the distribution, so the n-gram model is worth most where it trusts its exact counts: the mixture
is likelier with other discounts than the model alone. Starting from the estimates, the discounts
are chosen by coordinate ascent over FACTOR_MOVES (each kept within 0 < D_j <= j): an order's three
together first, then each on its own, the RNN's weight re-chosen at every step
(``training.interpolation.choose_weight``). A move is kept only if it makes both halves of the
development split (alternate sentences) likelier, so the search stops where it would only fit the
noise of one of them.

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

# multiplicative moves tried on the chosen discounts at each step, and how many rounds over them
FACTOR_MOVES = (0.25, 0.35, 0.5, 0.7, 0.85, 1.2, 1.4, 2.0)
MAX_SWEEPS = 4
CAPS = np.array([1.0, 2.0, 3.0])  # D_j <= j


def moved(values: np.ndarray, entries: tuple[int, ...], move: float) -> np.ndarray:
    """The discounts (orders x 3) with these entries (flat indices) times ``move``, each capped at its count."""
    trial = values.copy().reshape(-1)
    trial[list(entries)] *= move
    return np.minimum(trial.reshape(values.shape), CAPS)


def as_discounts(values: np.ndarray) -> list[Discounts]:
    return [Discounts(float(a), float(b), float(c)) for a, b, c in values]


@dataclass(frozen=True)
class TokenLevel:
    """The tokens whose context of one length is in the table (``rows``), with what their
    probabilities need at that length under any discounts: the n-gram's count (0 if not kept), and
    the context's total, count-of-counts and dropped n-grams (``training.ngram_fit.LevelCounts``)."""

    rows: np.ndarray  # int64
    counts: np.ndarray  # int64
    total: np.ndarray  # float64
    seen: np.ndarray  # (3, rows)
    dropped: np.ndarray  # (4, rows)


@dataclass(frozen=True)
class TokenCounts:
    """Some tokens' counts at every context length, gathered once: their probabilities under any
    discounts are then a few vector operations away."""

    tokens: int
    levels: list[TokenLevel]
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
        contexts = arranged.contexts_found(newest_first, lengths)
        words = np.asarray(words, dtype=np.int64)
        levels = []
        for k, level in enumerate(arranged.levels):
            rows = np.flatnonzero(contexts[:, k] >= 0)
            c = contexts[rows, k]
            at, hit = _entries_of(level.offsets, level.words, c, words[rows])
            counts = np.zeros(rows.size, dtype=np.int64)
            counts[hit] = level.counts[at[hit]]
            levels.append(TokenLevel(rows, counts, level.total[c], level.seen[:, c], level.dropped[:, c]))
        return cls(len(words), levels, 1.0 / (base - 1))

    def probs(self, discounts: Sequence[Discounts]) -> np.ndarray:
        """The table's probability of each token under these discounts (``NgramTable.prob``'s sums)."""
        p = np.full(self.tokens, self.uniform)
        for level, d in zip(self.levels, discounts):
            discounted, inverse_total, backoff = discounted_values(d, level.counts, level.total, level.seen,
                                                                   level.dropped)
            p[level.rows] = discounted * inverse_total + backoff * p[level.rows]
        return p


def _entries_of(offsets: np.ndarray, entry_words: np.ndarray, contexts: np.ndarray, words: np.ndarray,
                ) -> tuple[np.ndarray, np.ndarray]:
    """Where each (context, word) is among the entries (sorted by word within each context's slice),
    and whether it is there: a binary search within each row's slice, all rows at once, so nothing
    as large as the level is made."""
    low, high = offsets[contexts].copy(), offsets[contexts + 1].copy()
    end = high.copy()
    last = max(entry_words.size - 1, 0)
    while np.any(low < high):
        middle = (low + high) // 2
        searching = low < high
        right = searching & (entry_words[np.minimum(middle, last)] < words)
        low = np.where(right, middle + 1, low)
        high = np.where(searching & ~right, middle, high)
    hit = low < end
    hit[hit] = entry_words[low[hit]] == words[hit]
    return low, hit


@dataclass(frozen=True)
class DiscountChoice:
    discounts: list[Discounts]
    weight: float
    ngram_probs: np.ndarray  # the development tokens' under the chosen discounts
    estimated_log_likelihood: float  # the mixture's on the development tokens with the estimated discounts
    log_likelihood: float  # with the chosen ones


def tune_discounts(arranged: ArrangedCounts, sentences: Sequence[Sequence[int]], rnn_probs: np.ndarray,
                   choose_weight: Callable[[np.ndarray, np.ndarray], float]) -> DiscountChoice:
    """The discounts and the RNN weight that make the mixture likeliest on these development
    sentences (``rnn_probs``: the RNN's probability of each of their tokens)."""
    development = TokenCounts.gather(arranged, sentences)
    if development.tokens != rnn_probs.size:
        raise ValueError(f"{rnn_probs.size} RNN probabilities for {development.tokens} tokens")
    halves = np.repeat(np.arange(len(sentences)) % 2 == 0, [len(s) - 1 for s in sentences])

    def evaluate(values: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        ngram = development.probs(as_discounts(values))
        weight = choose_weight(rnn_probs, ngram)
        log_probs = np.log(weight * rnn_probs + (1.0 - weight) * ngram)
        return np.array([log_probs[halves].sum(), log_probs[~halves].sum()]), weight, ngram

    values = as_array(arranged.estimated)
    best, weight, ngram = evaluate(values)
    estimated = float(best.sum())
    by_order = [(3 * k, 3 * k + 1, 3 * k + 2) for k in range(arranged.order)]
    one_by_one = [(i,) for i in range(values.size)]
    for groups in (by_order, one_by_one):  # an order's three together first, then each on its own
        for _ in range(MAX_SWEEPS):
            changed = False
            for entries in groups:
                for move in FACTOR_MOVES:
                    trial = moved(values, entries, move)
                    score, trial_weight, trial_ngram = evaluate(trial)
                    if np.all(score > best):
                        values, best, weight, ngram, changed = trial, score, trial_weight, trial_ngram, True
            if not changed:
                break
    log.info("discounts %s chosen on %s development tokens (estimated: %s): mixture perplexity %.2f -> %.2f",
             rounded(values), f"{rnn_probs.size:,}", rounded(as_array(arranged.estimated)),
             np.exp(-estimated / rnn_probs.size), np.exp(-best.sum() / rnn_probs.size))
    return DiscountChoice(as_discounts(values), weight, ngram, estimated, float(best.sum()))


def as_array(discounts: Sequence[Discounts]) -> np.ndarray:
    return np.array([[d.one, d.two, d.three_plus] for d in discounts])


def rounded(values: np.ndarray) -> list[list[float]]:
    """Discounts (orders x 3) as short numbers, for logs and the training JSON."""
    return [[float(f"{x:.4g}") for x in row] for row in values]

"""Interpolated modified Kneser-Ney from counted n-grams (training.ngram_counts) straight into the
compact table, in arrays: the numbers of the reference in ``training.kneser_ney`` (the same
counts, discounts and table, bit for bit, where nothing is pruned) without a Python object per
n-gram, so a corpus of 100M words fits in memory.

Pruning (count cut-offs, as KenLM's ``lmplz --prune``): at order k, an n-gram seen at most
``thresholds[k - 1]`` times is dropped, unless it is the suffix of an n-gram kept one order up
(so every kept context stays reachable from the empty one). The discounts still come from the
unpruned count-of-counts, and a dropped n-gram's discounted count moves into its context's backoff
weight, so every context's probabilities still sum to 1; a context left with no n-gram of its own
is dropped (it would back off whole).

The counts are first arranged as the table stores them (``arrange_counts``: contexts, words,
counts and each context's count-of-counts); the table under any discounts is then a few array
operations away, which is what choosing them for the mixture (``training.discount_tuning``) needs.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.ngram_table import ContextLevel, NgramTable
from training.kneser_ney import Discounts, KneserNey
from training.ngram_counts import GramCounts, count_ngrams

log = logging.getLogger(__name__)


def parse_thresholds(text: str) -> tuple[int, ...]:
    """``"0,0,1"``: the count cut-off of each order from the unigrams up, the last one for every
    higher order; unigrams are never pruned and the cut-offs never fall, as lmplz requires."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{text!r} is not a comma-separated list of whole numbers") from None
    if values[0] != 0:
        raise ValueError("unigrams are never pruned: the first cut-off must be 0")
    if any(b < a for a, b in zip(values, values[1:])):
        raise ValueError("the cut-offs must not fall from one order to the next")
    return values


# The default cut-offs: a small corpus keeps every n-gram (the default corpus's 0.77M training
# tokens: a 61 MB table, and a likelier mixture on the development split than with any cut-off);
# above KEEP_ALL_UP_TO_TOKENS, the 4-grams and longer seen once are dropped, which keeps the table
# of a large corpus (most of whose long n-grams are seen once) and the service's memory bounded.
KEEP_ALL_UP_TO_TOKENS = 2_000_000
LARGE_CORPUS_CUT_OFFS = (0, 0, 0, 1)


def default_cut_offs(training_tokens: int) -> tuple[int, ...]:
    """The cut-offs ``--ngram-prune auto`` takes for a training text of this many tokens."""
    return (0,) if training_tokens <= KEEP_ALL_UP_TO_TOKENS else LARGE_CORPUS_CUT_OFFS


def thresholds_for(values: Sequence[int], order: int) -> list[int]:
    """The cut-off of each order 1 .. order, the last value given repeated."""
    return [values[min(k, len(values) - 1)] for k in range(order)]


def kn_counts_of(levels: Sequence[GramCounts], vocab_size: int, start_id: int) -> list[np.ndarray]:
    """The counts a_k each order works with (see training.kneser_ney), one per distinct k-gram of
    ``levels[k - 1]``; 0 for SENTENCE_START as a unigram, which is never predicted."""
    order = len(levels)
    counts = []
    for k, level in enumerate(levels, start=1):
        if k == order:
            a = level.counts.copy()
        else:  # continuation counts: distinct (k+1)-grams with this suffix
            a = np.bincount(levels[k].keys // vocab_size, minlength=level.keys.size).astype(np.int64)
            if k > 1:  # n-grams opening a sentence: nothing precedes them, so their raw count
                opening = level.keys % vocab_size == start_id
                a[opening] = level.counts[opening]
        if k == 1:
            a[level.keys == start_id] = 0
        counts.append(a)
    return counts


def kept_ngrams(levels: Sequence[GramCounts], counts: Sequence[np.ndarray], thresholds: Sequence[int],
                vocab_size: int) -> list[np.ndarray]:
    """Per order, which n-grams the table keeps: seen more often than the cut-off (raw counts, as
    lmplz), or the suffix of a kept one."""
    keep: list[np.ndarray] = [np.zeros(0, dtype=bool)] * len(levels)
    for k in range(len(levels), 0, -1):
        keep[k - 1] = levels[k - 1].counts > thresholds[k - 1]
        if k < len(levels):
            suffixes = levels[k].keys[keep[k]] // vocab_size
            keep[k - 1] |= np.bincount(suffixes, minlength=levels[k - 1].keys.size).astype(bool)
        keep[k - 1] &= counts[k - 1] > 0
    return keep


@dataclass(frozen=True)
class LevelCounts:
    """One order's counts arranged as the table stores that order (its contexts, and the words
    seen after each), with what any choice of discounts needs to become probabilities."""

    keys: np.ndarray  # int64, the table's context keys
    offsets: np.ndarray  # int64, each context's slice of words/counts
    words: np.ndarray  # int32, the kept n-grams' last words
    counts: np.ndarray  # int64, the kept n-grams' counts a_k
    total: np.ndarray  # float64, A(h) per context
    seen: np.ndarray  # int64 (3, contexts): N_1, N_2, N_3+ of every n-gram seen after it, kept or dropped
    dropped: np.ndarray  # (4, contexts): the dropped n-grams' summed counts, and how many of them have count 1, 2, 3+

    def level(self, discounts: Discounts) -> ContextLevel:
        """The table's level under these discounts."""
        discounted, inverse_total, backoff = discounted_values(discounts, self.counts, self.total, self.seen,
                                                               self.dropped)
        return ContextLevel(self.keys, self.offsets, inverse_total, backoff, self.words, discounted)


def discounted_values(discounts: Discounts, counts: np.ndarray, total: np.ndarray, seen: np.ndarray,
                      dropped: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a - D(a) of each count, 1 / A(h) and gamma(h) of each context): the level's numbers for these
    discounts; a dropped n-gram's discounted count goes to its context's gamma."""
    if not discounts.valid():
        raise ValueError(f"discounts {discounts} are not within 0 < D_j <= j")
    by_count = np.asarray(discounts.by_count())
    given_up = discounts.one * seen[0] + discounts.two * seen[1] + discounts.three_plus * seen[2]
    if dropped[0].any():
        given_up = given_up + (dropped[0] - (discounts.one * dropped[1] + discounts.two * dropped[2]
                                             + discounts.three_plus * dropped[3]))
    return counts - by_count[np.minimum(counts, 3)], 1.0 / total, given_up / total


@dataclass(frozen=True)
class ArrangedCounts:
    """Every order's counts arranged as the table stores them, and the discounts estimated from
    them: the table under any discounts is then a few array operations away."""

    order: int
    vocab_size: int
    start_id: int
    levels: list[LevelCounts]
    estimated: list[Discounts]

    def table(self, discounts: Sequence[Discounts] | None = None) -> NgramTable:
        """The table under these discounts (one per order), or the estimated ones."""
        discounts = discounts or self.estimated
        return NgramTable(self.order, self.vocab_size, self.start_id,
                          [level.level(d) for level, d in zip(self.levels, discounts)])


def arrange_counts(levels: Sequence[GramCounts], vocab_size: int, start_id: int,
                   thresholds: Sequence[int] | None = None) -> ArrangedCounts:
    """The counts of ``levels`` arranged order by order as the table stores them, pruned at these cut-offs."""
    order = len(levels)
    thresholds = list(thresholds or [0] * order)
    if len(thresholds) != order:
        raise ValueError(f"an order-{order} model needs {order} count cut-offs, got {len(thresholds)}")
    counts = kn_counts_of(levels, vocab_size, start_id)
    keep = kept_ngrams(levels, counts, thresholds, vocab_size)
    estimated = [KneserNey.estimate(k, a[a > 0]) for k, a in enumerate(counts, start=1)]
    arranged: list[LevelCounts] = []
    prefix, last_word = np.zeros(levels[0].keys.size, dtype=np.int64), levels[0].keys
    context_index = np.zeros(1, dtype=np.int64)  # the empty context is context 0 at length 0
    for k in range(1, order + 1):
        if k > 1:
            prefix, last_word = _prefixes(levels[k - 1], levels[k - 2], prefix, last_word, vocab_size)
        level, context_index = _level_counts(levels, k, counts[k - 1], keep[k - 1], prefix, last_word,
                                             context_index, vocab_size)
        arranged.append(level)
    return ArrangedCounts(order, vocab_size, start_id, arranged, estimated)


def fit_table(
    levels: Sequence[GramCounts],
    vocab_size: int,
    start_id: int,
    thresholds: Sequence[int] | None = None,
    discounts: Sequence[Discounts] | None = None,
) -> tuple[NgramTable, list[Discounts]]:
    """The table of the model these counts give, and each order's discounts (estimated unless given)."""
    arranged = arrange_counts(levels, vocab_size, start_id, thresholds)
    chosen = list(discounts) if discounts else arranged.estimated
    return arranged.table(chosen), chosen


def _prefixes(level: GramCounts, below: GramCounts, below_prefix: np.ndarray, below_last: np.ndarray,
              vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Each k-gram's prefix (its first k - 1 words) as a rank among the (k-1)-grams, and its last word,
    from the same for its suffix one order down."""
    suffix, first = np.divmod(level.keys, vocab_size)
    prefix = np.searchsorted(below.keys, below_prefix[suffix] * vocab_size + first)
    return prefix, below_last[suffix]


def _level_counts(levels: Sequence[GramCounts], k: int, a: np.ndarray, keep: np.ndarray, prefix: np.ndarray,
                  last_word: np.ndarray, below_index: np.ndarray, vocab_size: int,
                  ) -> tuple[LevelCounts, np.ndarray]:
    """The table's contexts of length k - 1 (the prefixes of the kept k-grams) and their entries; and
    each (k-1)-gram's index among those contexts (-1 for none), which keys the next level."""
    contexts = 1 if k == 1 else levels[k - 2].keys.size
    seen = a > 0
    total = np.bincount(prefix[seen], weights=a[seen], minlength=contexts)
    by_class = [np.bincount(prefix[seen & (np.minimum(a, 3) == j)], minlength=contexts) for j in (1, 2, 3)]
    dropped = seen & ~keep
    dropped_by_class = [np.bincount(prefix[dropped & (np.minimum(a, 3) == j)], minlength=contexts) for j in (1, 2, 3)]
    dropped_sum = np.bincount(prefix[dropped], weights=a[dropped], minlength=contexts)
    is_context = np.bincount(prefix[keep], minlength=contexts) > 0
    index = np.where(is_context, np.cumsum(is_context) - 1, -1)
    chosen = np.flatnonzero(is_context)
    if k == 1:
        keys = np.zeros(chosen.size, dtype=np.int64)
    else:
        suffix, first = np.divmod(levels[k - 2].keys[chosen], vocab_size)
        keys = below_index[suffix] * vocab_size + first
    entries = np.flatnonzero(keep)
    entries = entries[np.lexsort((last_word[entries], prefix[entries]))]
    offsets = np.searchsorted(index[prefix[entries]], np.arange(chosen.size + 1))
    level = LevelCounts(keys, offsets.astype(np.int64), last_word[entries].astype(np.int32), a[entries],
                        total[chosen], np.stack(by_class)[:, chosen],
                        np.stack([dropped_sum, *dropped_by_class])[:, chosen])
    return level, index


def arrange_tokens(tokens: np.ndarray, order: int, vocab_size: int, start_id: int,
                   thresholds: Sequence[int] | None = None) -> ArrangedCounts:
    """Count the flat token array (``training.ngram_counts.flat_tokens``) and arrange the counts."""
    started = time.monotonic()
    levels = count_ngrams(tokens, order, vocab_size, start_id)
    counted = time.monotonic()
    arranged = arrange_counts(levels, vocab_size, start_id, thresholds)
    log.info("Kneser-Ney %d-gram: %s tokens counted in %.1f s, arranged in %.1f s, %s n-grams kept", order,
             f"{tokens.size:,}", counted - started, time.monotonic() - counted,
             f"{sum(level.words.size for level in arranged.levels):,}")
    return arranged


def fit_tokens(tokens: np.ndarray, order: int, vocab_size: int, start_id: int,
               thresholds: Sequence[int] | None = None) -> NgramTable:
    """Count the flat token array and fit the table with the estimated discounts."""
    return arrange_tokens(tokens, order, vocab_size, start_id, thresholds).table()

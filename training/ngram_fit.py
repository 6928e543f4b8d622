"""Interpolated modified Kneser-Ney from counted n-grams (training.ngram_counts) straight into the
compact table, in arrays: the numbers of the reference in ``training.kneser_ney`` (the same
counts, discounts and table, bit for bit, where nothing is pruned) without a Python object per
n-gram. The counted n-grams are read a chunk at a time (from disk, for a large corpus), so
besides what is kept, memory holds a few numbers per n-gram of one order (its count for an order
below the highest, whether it is kept) and one per context, never every order's counts at once.

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
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.ngram_table import ContextLevel, NgramTable, walk_contexts
from training.chunked_array import ChunkedArray
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


CHUNK = 1 << 22  # n-grams read at a time


def kn_counts_at(levels: Sequence[GramCounts], k: int, vocab_size: int, start_id: int,
                 chunk: int = CHUNK) -> ChunkedArray:
    """The counts a_k order k works with (see training.kneser_ney), one per distinct k-gram of
    ``levels[k - 1]``; 0 for SENTENCE_START as a unigram, which is never predicted. The highest
    order's are its raw counts, read from where they are; a lower order's are made in memory."""
    level = levels[k - 1]
    if k == len(levels) and k > 1:
        return level.counts
    if k == len(levels):
        a = level.counts.load().copy()
    else:  # continuation counts: distinct (k+1)-grams with this suffix (sorted: the keys rise)
        a = np.zeros(level.size, dtype=np.int64)
        for _, keys in levels[k].keys.chunks(chunk):
            suffix = keys // vocab_size
            low = int(suffix[0])
            a[low : int(suffix[-1]) + 1] += np.bincount(suffix - low)
        if k > 1:  # n-grams opening a sentence: nothing precedes them, so their raw count
            for first, keys in level.keys.chunks(chunk):
                opening = np.flatnonzero(keys % vocab_size == start_id)
                if opening.size:
                    a[first + opening] = level.counts.read(first, first + keys.size)[opening]
    if k == 1:
        a[level.keys.load() == start_id] = 0
    return ChunkedArray.in_memory(a)


def kn_counts_of(levels: Sequence[GramCounts], vocab_size: int, start_id: int) -> list[np.ndarray]:
    """Every order's counts a_k in memory (for a small corpus, and the tests)."""
    return [kn_counts_at(levels, k, vocab_size, start_id).load() for k in range(1, len(levels) + 1)]


def kept_ngrams(levels: Sequence[GramCounts], thresholds: Sequence[int], vocab_size: int, start_id: int,
                chunk: int = CHUNK) -> tuple[list[np.ndarray], list[tuple[int, int, int, int]]]:
    """Per order, which n-grams the table keeps: seen more often than the cut-off (raw counts, as
    lmplz), or the suffix of a kept one; and each order's count-of-counts (n1 .. n4 of its a_k)."""
    order = len(levels)
    keep: list[np.ndarray] = [np.zeros(0, dtype=bool)] * order
    tallies: list[tuple[int, int, int, int]] = [(0, 0, 0, 0)] * order
    for k in range(order, 0, -1):
        level = levels[k - 1]
        kept = np.zeros(level.size, dtype=bool)
        for first, counts in level.counts.chunks(chunk):
            kept[first : first + counts.size] = counts > thresholds[k - 1]
        if k < order:
            for first, keys in levels[k].keys.chunks(chunk):
                kept[keys[keep[k][first : first + keys.size]] // vocab_size] = True
        tally = np.zeros(6, dtype=np.int64)
        for first, a in kn_counts_at(levels, k, vocab_size, start_id, chunk).chunks(chunk):
            kept[first : first + a.size] &= a > 0
            tally += np.bincount(np.clip(a, 0, 5), minlength=6)
        keep[k - 1] = kept
        tallies[k - 1] = tuple(int(n) for n in tally[1:5])
    return keep, tallies


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

    def contexts_found(self, newest_first: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """``NgramTable.contexts_found`` for the table of any discounts: it follows the contexts'
        keys only, so it reads those and no probabilities (which would take as much memory as the
        table itself)."""
        none = np.zeros(0)
        levels = [ContextLevel(level.keys, level.offsets, none, none, level.words, none) for level in self.levels]
        return walk_contexts(levels, self.vocab_size, newest_first, lengths)


def arrange_counts(levels: Sequence[GramCounts], vocab_size: int, start_id: int,
                   thresholds: Sequence[int] | None = None, chunk: int = CHUNK) -> ArrangedCounts:
    """The counts of ``levels`` arranged order by order as the table stores them, pruned at these cut-offs."""
    order = len(levels)
    thresholds = list(thresholds or [0] * order)
    if len(thresholds) != order:
        raise ValueError(f"an order-{order} model needs {order} count cut-offs, got {len(thresholds)}")
    keep, tallies = kept_ngrams(levels, thresholds, vocab_size, start_id, chunk)
    estimated = [KneserNey.estimate_from(k, tallies[k - 1]) for k in range(1, order + 1)]
    arranged: list[LevelCounts] = []
    context_index = np.zeros(1, dtype=np.int32)  # the empty context is context 0 at length 0
    for k in range(1, order + 1):
        level, context_index = _level_counts(levels, k, start_id, keep[k - 1], context_index, vocab_size, chunk)
        keep[k - 1] = np.zeros(0, dtype=bool)  # done with: let it go
        arranged.append(level)
    return ArrangedCounts(order, vocab_size, start_id, arranged, estimated)


def fit_table(
    levels: Sequence[GramCounts],
    vocab_size: int,
    start_id: int,
    thresholds: Sequence[int] | None = None,
    discounts: Sequence[Discounts] | None = None,
    chunk: int = CHUNK,
) -> tuple[NgramTable, list[Discounts]]:
    """The table of the model these counts give, and each order's discounts (estimated unless given)."""
    arranged = arrange_counts(levels, vocab_size, start_id, thresholds, chunk)
    chosen = list(discounts) if discounts else arranged.estimated
    return arranged.table(chosen), chosen


def _level_counts(levels: Sequence[GramCounts], k: int, start_id: int, keep: np.ndarray, below_index: np.ndarray,
                  vocab_size: int, chunk: int) -> tuple[LevelCounts, np.ndarray]:
    """The table's contexts of length k - 1 (the prefixes of the kept k-grams) and their entries; and
    each (k-1)-gram's index among those contexts (-1 for none), which keys the next level."""
    level = levels[k - 1]
    a = kn_counts_at(levels, k, vocab_size, start_id, chunk)
    is_context = np.zeros(1 if k == 1 else levels[k - 2].size, dtype=bool)
    for first, prefixes in level.prefixes.chunks(chunk):
        is_context[prefixes[keep[first : first + prefixes.size]]] = True
    index = np.cumsum(is_context, dtype=np.int32)
    index -= 1
    index[~is_context] = -1
    contexts = int(np.count_nonzero(is_context))
    total = np.zeros(contexts)
    seen = np.zeros((3, contexts), dtype=np.int64)
    dropped = np.zeros((4, contexts))
    entry_contexts, entry_words, entry_counts = [], [], []
    columns = zip(a.chunks(chunk), level.prefixes.chunks(chunk), level.last_words.chunks(chunk))
    for (first, counts), (_, prefixes), (_, last_words) in columns:
        context = index[prefixes]
        kept = keep[first : first + counts.size]
        counted = (counts > 0) & (context >= 0)  # only the contexts the table keeps are summed over
        _tally(total, seen, context[counted], counts[counted])
        gone = counted & ~kept
        if gone.any():
            _tally(dropped[0], dropped[1:], context[gone], counts[gone])
        entry_contexts.append(context[kept])
        entry_words.append(last_words[kept])
        entry_counts.append(counts[kept])
    del a  # the largest array of the level: gone before the entries are sorted
    words, context = _joined(entry_words), _joined(entry_contexts)
    ordered = np.lexsort((words, context))
    words = words[ordered]
    offsets = np.concatenate(([0], np.cumsum(np.bincount(context, minlength=contexts)))).astype(np.int64)
    del context
    counts = _joined(entry_counts)[ordered]
    del ordered
    if k == 1:
        keys = np.zeros(contexts, dtype=np.int64)
    else:
        parts = []
        for first, below_keys in levels[k - 2].keys.chunks(chunk):
            suffix, oldest = np.divmod(below_keys[is_context[first : first + below_keys.size]], vocab_size)
            parts.append(below_index[suffix].astype(np.int64) * vocab_size + oldest)
        keys = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return LevelCounts(keys, offsets, words.astype(np.int32), counts, total, seen, dropped), index


def _tally(total: np.ndarray, by_count: np.ndarray, contexts: np.ndarray, counts: np.ndarray) -> None:
    """Add these n-grams' counts to their contexts' totals, and each one to its context's number of
    n-grams of count 1, 2 and 3 or more (the rows of ``by_count``)."""
    size = total.size
    total += np.bincount(contexts, weights=counts, minlength=size)
    capped = np.minimum(counts, 3)
    for row, j in enumerate((1, 2, 3)):
        by_count[row] += np.bincount(contexts[capped == j], minlength=size).astype(by_count.dtype)


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """The parts end to end, the list emptied (so they are not held twice)."""
    joined = np.concatenate(parts)
    parts.clear()
    return joined


def arrange_tokens(tokens: np.ndarray, order: int, vocab_size: int, start_id: int,
                   thresholds: Sequence[int] | None = None) -> ArrangedCounts:
    """Count the flat token array (``training.ngram_counts.flat_tokens``) and arrange the counts."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ngram-levels-") as folder:  # the counts live on disk
        levels = count_ngrams(tokens, order, vocab_size, start_id, folder=Path(folder))
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

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
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence

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


def fit_table(
    levels: Sequence[GramCounts],
    vocab_size: int,
    start_id: int,
    thresholds: Sequence[int] | None = None,
    discounts: Sequence[Discounts] | None = None,
) -> tuple[NgramTable, list[Discounts]]:
    """The table of the model these counts give, and each order's discounts (estimated unless given)."""
    order = len(levels)
    thresholds = list(thresholds or [0] * order)
    if len(thresholds) != order:
        raise ValueError(f"an order-{order} model needs {order} count cut-offs, got {len(thresholds)}")
    counts = kn_counts_of(levels, vocab_size, start_id)
    keep = kept_ngrams(levels, counts, thresholds, vocab_size)
    chosen = [discounts[k - 1] if discounts else KneserNey.estimate(k, a[a > 0]) for k, a in enumerate(counts, start=1)]
    table_levels: list[ContextLevel] = []
    prefix, last_word = np.zeros(levels[0].keys.size, dtype=np.int64), levels[0].keys
    context_index = np.zeros(1, dtype=np.int64)  # the empty context is context 0 at length 0
    for k in range(1, order + 1):
        if k > 1:
            prefix, last_word = _prefixes(levels[k - 1], levels[k - 2], prefix, last_word, vocab_size)
        level, context_index = _table_level(levels, k, counts[k - 1], keep[k - 1], prefix, last_word,
                                            chosen[k - 1], context_index, vocab_size)
        table_levels.append(level)
    return NgramTable(order, vocab_size, start_id, table_levels), chosen


def _prefixes(level: GramCounts, below: GramCounts, below_prefix: np.ndarray, below_last: np.ndarray,
              vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Each k-gram's prefix (its first k - 1 words) as a rank among the (k-1)-grams, and its last word,
    from the same for its suffix one order down."""
    suffix, first = np.divmod(level.keys, vocab_size)
    prefix = np.searchsorted(below.keys, below_prefix[suffix] * vocab_size + first)
    return prefix, below_last[suffix]


def _table_level(levels: Sequence[GramCounts], k: int, a: np.ndarray, keep: np.ndarray, prefix: np.ndarray,
                 last_word: np.ndarray, discounts: Discounts, below_index: np.ndarray, vocab_size: int,
                 ) -> tuple[ContextLevel, np.ndarray]:
    """The table's contexts of length k - 1 (the prefixes of the kept k-grams) and their entries; and
    each (k-1)-gram's index among those contexts (-1 for none), which keys the next level."""
    contexts = 1 if k == 1 else levels[k - 2].keys.size
    seen = a > 0
    total = np.bincount(prefix[seen], weights=a[seen], minlength=contexts)
    by_count = np.asarray(discounts.by_count())
    n1, n2, n3 = (np.bincount(prefix[seen & (np.minimum(a, 3) == j)], minlength=contexts) for j in (1, 2, 3))
    given_up = discounts.one * n1 + discounts.two * n2 + discounts.three_plus * n3
    discounted = a - by_count[np.minimum(a, 3)]
    dropped = seen & ~keep
    if dropped.any():
        given_up += np.bincount(prefix[dropped], weights=discounted[dropped], minlength=contexts)
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
    level = ContextLevel(keys, offsets.astype(np.int64), 1.0 / total[chosen], given_up[chosen] / total[chosen],
                         last_word[entries].astype(np.int32), discounted[entries])
    return level, index


def fit_tokens(tokens: np.ndarray, order: int, vocab_size: int, start_id: int,
               thresholds: Sequence[int] | None = None) -> NgramTable:
    """Count the flat token array (``training.ngram_counts.flat_tokens``) and fit the table."""
    started = time.monotonic()
    levels = count_ngrams(tokens, order, vocab_size, start_id)
    counted = time.monotonic()
    table, _ = fit_table(levels, vocab_size, start_id, thresholds)
    log.info("Kneser-Ney %d-gram: %s tokens counted in %.1f s, fitted in %.1f s, %s n-grams kept", order,
             f"{tokens.size:,}", counted - started, time.monotonic() - counted,
             f"{sum(level.words.size for level in table.levels):,}")
    return table

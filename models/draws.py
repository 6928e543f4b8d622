"""Random choices from unnormalised weights: the last step of every sampled word.

Draws come only from a ``numpy.random.Generator`` the caller owns (one per sequence), so the
same seed gives the same word whatever else runs beside it.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

DRAW_BLOCK = 64
BELOW_ONE = float(np.nextafter(1.0, 0.0))


def tempered(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Log-weights divided by the temperature, the best shifted to 0 first: for a tiny temperature
    the others then go to -inf (a harmless overflow), so the draw becomes greedy, never NaN."""
    with np.errstate(over="ignore"):
        return (scores - scores.max()) / temperature


def draw_index(weights: np.ndarray, rng: np.random.Generator, sums: np.ndarray | None = None) -> int:
    """An index drawn in proportion to ``weights`` (>= 0, not necessarily normalised), with one
    uniform number from ``rng`` (``index_at``)."""
    return index_at(weights, rng.random(), sums)


def index_at(weights: np.ndarray, uniform: float, sums: np.ndarray | None = None) -> int:
    """The index where ``uniform`` (in [0, 1)) falls in the running sum of ``weights``.

    An inverse-CDF draw in float64: robust where ``Generator.multinomial`` rejects sums above 1.
    Over a large vocabulary, in two levels (a running sum over blocks of 64 words, then within
    the chosen block): NumPy's cumsum is slow, and this needs it over about 2 sqrt(C) numbers.
    ``sums`` (from ``block_sums``) saves summing the blocks again.
    """
    if weights.size <= 4 * DRAW_BLOCK:
        return inverse_cdf(weights, uniform)
    block_cdf = np.cumsum(block_sums(weights) if sums is None else sums, dtype=np.float64)
    target = uniform * block_cdf[-1]
    block = min(int(np.searchsorted(block_cdf, target, side="right")), block_cdf.size - 1)
    first = block * DRAW_BLOCK
    inner = np.cumsum(weights[first : first + DRAW_BLOCK], dtype=np.float64)
    if inner[-1] <= 0:  # only by rounding at a block boundary
        return inverse_cdf(weights, target / block_cdf[-1])
    # where the target fell inside the block; kept below the block's total, so a zero weight
    # at the block's end is never chosen
    offset = min(max(target - (block_cdf[block - 1] if block else 0.0), 0.0), inner[-1] * BELOW_ONE)
    return first + int(np.searchsorted(inner, offset, side="right"))


def block_sums(weights: np.ndarray) -> np.ndarray:
    """Sums of consecutive blocks of DRAW_BLOCK weights (the last block may be shorter)."""
    return np.add.reduceat(weights, _block_starts(weights.size))


def float32_block_sums(weights: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``block_sums`` of each row of ``weights`` (B x C, float32), summed in float32 by one
    matrix-vector product per row, as float64 (B x blocks; into ``out`` if given). A sixth of
    the time of float64 sums; they agree to a few parts in 1e7 of a block's sum (float32
    rounding, of the size of what float32 logits already carry), and a row's sums do not depend
    on the rows beside it."""
    rows, size = weights.shape
    whole = size // DRAW_BLOCK
    sums = np.empty((rows, -(-size // DRAW_BLOCK))) if out is None else out
    sums[:, :whole] = weights[:, : whole * DRAW_BLOCK].reshape(rows, whole, DRAW_BLOCK) @ _ones32()
    if whole < sums.shape[1]:
        sums[:, whole] = weights[:, whole * DRAW_BLOCK :].sum(axis=1, dtype=np.float64)
    return sums


@lru_cache(maxsize=1)
def _ones32() -> np.ndarray:
    return np.ones(DRAW_BLOCK, dtype=np.float32)


@lru_cache(maxsize=8)
def _block_starts(size: int) -> np.ndarray:
    return np.arange(0, size, DRAW_BLOCK)


def inverse_cdf(weights: np.ndarray, u: float) -> int:
    """The index where ``u`` (in [0, 1)) falls in the running sum of ``weights``."""
    cdf = np.cumsum(weights)
    return int(min(np.searchsorted(cdf, u * cdf[-1], side="right"), weights.size - 1))

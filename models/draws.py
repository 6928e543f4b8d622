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
    """An index drawn in proportion to ``weights`` (>= 0, not necessarily normalised).

    An inverse-CDF draw in float64: robust where ``Generator.multinomial`` rejects sums above 1.
    Over a large vocabulary, in two levels (a running sum over blocks of 64 words, then within
    the chosen block): NumPy's cumsum is slow, and this needs it over about 2 sqrt(C) numbers.
    ``sums`` (from ``block_sums``) saves summing the blocks again.
    """
    if weights.size <= 4 * DRAW_BLOCK:
        return _inverse_cdf(weights, rng.random())
    block_cdf = np.cumsum(block_sums(weights) if sums is None else sums, dtype=np.float64)
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


def block_sums(weights: np.ndarray) -> np.ndarray:
    """Sums of consecutive blocks of DRAW_BLOCK weights (the last block may be shorter)."""
    return np.add.reduceat(weights, _block_starts(weights.size))


@lru_cache(maxsize=8)
def _block_starts(size: int) -> np.ndarray:
    return np.arange(0, size, DRAW_BLOCK)


def _inverse_cdf(weights: np.ndarray, u: float) -> int:
    """The index where ``u`` (in [0, 1)) falls in the running sum of ``weights``."""
    cdf = np.cumsum(weights)
    return int(min(np.searchsorted(cdf, u * cdf[-1], side="right"), weights.size - 1))


def draw_indices(weights: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """``draw_index`` of every row of ``weights`` (B x C, float64, >= 0) at once, row i with the
    uniform number ``uniforms[i]`` its generator gave (``rng.random()``, the one number
    ``draw_index`` takes): the same indices, bit for bit (the sums run in the same order)."""
    rows, size = weights.shape
    if size <= 4 * DRAW_BLOCK:
        cdf = np.cumsum(weights, axis=1)
        return np.minimum((cdf <= (uniforms * cdf[:, -1])[:, None]).sum(axis=1), size - 1)
    block_cdf = np.cumsum(np.add.reduceat(weights, _block_starts(size), axis=1), axis=1, dtype=np.float64)
    targets = uniforms * block_cdf[:, -1]
    blocks = np.minimum((block_cdf <= targets[:, None]).sum(axis=1), block_cdf.shape[1] - 1)
    firsts = blocks * DRAW_BLOCK
    columns = firsts[:, None] + np.arange(DRAW_BLOCK)
    inside = columns < size  # the last block may be shorter: zeros after it leave its sums as they are
    values = np.where(inside, np.take_along_axis(weights, np.minimum(columns, size - 1), axis=1), 0.0)
    inner = np.cumsum(values, axis=1)
    before = np.where(blocks > 0, np.take_along_axis(block_cdf, np.maximum(blocks - 1, 0)[:, None], axis=1)[:, 0], 0.0)
    offsets = np.minimum(np.maximum(targets - before, 0.0), inner[:, -1] * BELOW_ONE)
    chosen = firsts + (inner <= offsets[:, None]).sum(axis=1)
    for row in np.flatnonzero(inner[:, -1] <= 0):  # only by rounding at a block boundary
        chosen[row] = _inverse_cdf(weights[row], targets[row] / block_cdf[row, -1])
    return chosen

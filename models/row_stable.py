"""Matrix products whose rows do not depend on how many rows there are.

A BLAS product's rounding can depend on its shape: with OpenBLAS one row goes to a
matrix-vector kernel and small products to kernels picked by size, so the same row can come out
different in its last bits alone and in a batch. Generation must not let the batch change a
sequence's numbers, so a product it runs for a batch of sequences is padded to at least a row
count from which adding rows changes nothing (``product_width``, measured once on this
machine's BLAS when a model is made ready for generation) and ``stable_product`` runs it so. Some
BLAS kernels round a row by its place among the others, whatever their count; on such a machine
there is no such count, and those products run row by row, slower but just as stable.

``batch_product`` runs products with an output layer's V: one padded product from FEW_ROWS rows
on, row by row (matrix-vector products) below. Each row's numbers then depend only on which of
the two ways ran, and the two agree to float32 rounding (a sampled word changes only when its
uniform number falls within about 1e-7 of a boundary; bench/engine_exactness.py counts).
The recurrent step's small products need no padding: ``rowwise_product`` runs them row by row in
one call, as cheap as a matrix-matrix product up to about 16 rows.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


# Below this many rows, products with V run row by row and the mixture draw runs its dense
# per-row path: one matrix-matrix product pays for packing all of V (about 100 us for the default
# model's 8000 x 100 on an AMD EPYC, three matrix-vector products' worth), and the batched draw a
# fixed cost of some 150 NumPy calls a step; the crossover is measured (docs/measurements.md).
FEW_ROWS = 4


def consistent_width(row_result: Callable[[int], list[bytes]], most: int) -> int:
    """The smallest row count n >= 2 such that, for every count from n to ``most``,
    ``row_result(count)`` (the results of the same first and last input rows, as bytes, with
    ``count`` rows in all) is what it is at n: a product padded to at least that many rows then
    rounds each row the same way, however many rows it has."""
    results = [row_result(count) for count in range(2, most + 1)]
    width = most
    for count in range(most - 1, 1, -1):
        if results[count - 2] != results[count - 1]:
            break
        width = count
    return width


def pad_rows(rows: np.ndarray, width: int) -> np.ndarray:
    """``rows`` with copies of its first row added up to ``width`` rows."""
    if rows.shape[0] >= width:
        return rows
    return np.concatenate([rows, np.repeat(rows[:1], width - rows.shape[0], axis=0)])


def product_width(matrix: np.ndarray, most: int, seed: int = 12345,
                  product: Callable[[np.ndarray, np.ndarray], np.ndarray] = np.matmul) -> int | None:
    """The smallest row count from which ``rows @ matrix`` (rows of ``matrix.shape[0]`` numbers in
    its dtype) rounds each row as in a product of ``most`` rows, wherever the row stands among them
    (probed with random rows, placed first, last and in the middle). None when even among ``most``
    rows a row's numbers depend on its place (OpenBLAS's Haswell kernels on an AMD EPYC do so):
    products then run row by row."""
    probe = np.random.default_rng(seed).standard_normal((most, matrix.shape[0])).astype(matrix.dtype)
    everything = product(probe, matrix)

    def placed(n: int) -> bool:
        """Whether n probe rows, placed first, last and in the middle, round as among all ``most``."""
        return all(np.array_equal(product(probe[rows], matrix), everything[rows])
                   for rows in ((np.arange(n) + start) % most for start in {0, most - n, (most - n) // 2 + 1}))

    if not placed(most):
        return None
    width = most
    for count in range(most - 1, 1, -1):
        if not placed(count):
            break
        width = count
    return width


def stable_product(rows: np.ndarray, matrix: np.ndarray, width: int) -> np.ndarray:
    """``rows @ matrix`` computed on at least ``width`` rows (padded, the padding dropped)."""
    n = rows.shape[0]
    return (pad_rows(rows, width) @ matrix)[:n] if n < width else rows @ matrix


def rowwise_product(rows: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``rows @ matrix``, each row its own matrix-vector product (one NumPy call over a stack of
    one-row matrices): a row's numbers are those of the row alone, however many rows there are.
    For a recurrent step's small matrices this costs no more than a matrix-matrix product up to
    about 16 rows, and spares a few rows the padding a product would need (docs/measurements.md)."""
    return (rows[:, None, :] @ matrix)[:, 0]


def batch_product(rows: np.ndarray, matrix: np.ndarray, width: int | None) -> np.ndarray:
    """``rows @ matrix``: row by row below FEW_ROWS rows or where no width makes a product
    row-stable (``width`` None), else ``stable_product``, an odd number of float32 rows with one
    more (a copy, dropped): OpenBLAS's single-precision product takes about as long for 2k rows as
    for 2k - 1 (docs/measurements.md), and from ``width`` rows on the count does not change a
    row's numbers."""
    n = rows.shape[0]
    if n < FEW_ROWS or width is None:
        return rowwise_product(rows, matrix)
    if n % 2 and rows.dtype == np.float32:
        return stable_product(pad_rows(rows, n + 1), matrix, width)[:n]
    return stable_product(rows, matrix, width)

"""models/row_stable.py: products whose rows do not depend on how many rows there are."""
from __future__ import annotations

import numpy as np
import pytest

from models.gru import GRU
from models.lstm import LSTM
from models.rnn import RNN
from models.row_stable import rowwise_product


@pytest.mark.parametrize("shape", [(100, 200), (8, 24), (37, 5)])
def test_a_rowwise_products_rows_are_those_of_each_row_alone(shape):
    rng = np.random.default_rng(sum(shape))
    matrix = rng.standard_normal(shape).astype(np.float32)
    rows = rng.standard_normal((64, shape[0])).astype(np.float32)
    alone = np.concatenate([rows[i : i + 1] @ matrix for i in range(64)])
    np.testing.assert_allclose(rowwise_product(rows, matrix), rows @ matrix, rtol=1e-5, atol=1e-5)
    for count in (1, 2, 5, 13, 33, 64):
        assert rowwise_product(rows[:count], matrix).tobytes() == alone[:count].tobytes()
    transposed = np.asfortranarray(matrix.T).T  # a transposed view, as the cells' steps pass it
    assert rowwise_product(rows[:7], transposed).tobytes() == alone[:7].tobytes()


@pytest.mark.parametrize("cell", [GRU, LSTM, RNN])
def test_a_generation_copys_step_needs_no_padding(cell):
    """The step's products run row by row, so the measured row-stable width is the least there
    is (a matrix-matrix product, at 100 units, needed 13 rows for the GRU and the RNN)."""
    assert cell(200, 100, seed=1).for_generation()._step_width == 2

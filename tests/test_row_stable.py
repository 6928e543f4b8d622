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
    """The step's products run row by row, so one row alone rounds as in any batch and the
    measured row-stable width is 1 (a matrix-matrix product, at 100 units, needed 13 rows)."""
    model = cell(200, 100, seed=1).for_generation()
    assert model._step_width == 1
    rng = np.random.default_rng(3)
    words = rng.integers(0, 200, 9)
    state = model.step(words, model.initial_state(9, np.float32))
    batch = model.stable_step(words, state)
    for row in (0, 4, 8):
        alone = model.stable_step(words[[row]], model.take_states(state, [row]))
        assert alone.tobytes() == model.take_states(batch, [row]).tobytes()


def test_a_step_that_rounds_one_row_alone_differently_is_padded(monkeypatch):
    """The width is measured, not assumed: a step whose single row comes out different in its
    last bits must run padded to two rows."""
    step = GRU.step

    def one_row_off(self, words, state):
        new = step(self, words, state)
        return np.nextafter(new, np.float32(np.inf)) if len(words) == 1 else new

    monkeypatch.setattr(GRU, "step", one_row_off)
    assert GRU(200, 100, seed=1).for_generation()._step_width == 2

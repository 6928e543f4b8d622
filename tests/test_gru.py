"""What only the GRU has: its gate convention, a sigmoid that cannot overflow, the one-step function
generation uses, and its parameter bookkeeping. Its gradients are checked in test_gradients.py."""
from __future__ import annotations

import numpy as np
import pytest

from models.gru import GRU, sigmoid
from models.recurrent_lm import RecurrentLM
from tests.gradient_check import C, H, SENTENCE_X, TINY_CLASSES, tiny_model


def test_update_gate_near_one_keeps_the_state_near_zero_takes_the_candidate():
    """Cho et al.'s convention: s_t = (1 - z) h~ + z s_{t-1}."""
    model = tiny_model(None, cell="gru")
    model.Uz[:] = 0.0
    model.Wz[:] = 0.0
    prev = np.array([0.3, -0.2, 0.5, 0.1])
    model.bz[:] = 40.0  # z = 1
    np.testing.assert_allclose(model._oracle_step(2, prev), prev, atol=1e-12)
    model.bz[:] = -40.0  # z = 0
    _, r, _ = model._gates(2, prev)
    candidate = np.tanh(model.Uh[:, 2] + model.Wh @ (r * prev) + model.bh)
    np.testing.assert_allclose(model._oracle_step(2, prev), candidate, atol=1e-12)


def test_sigmoid_does_not_overflow():
    x = np.array([-1000.0, -3.0, 0.0, 3.0, 1000.0], dtype=np.float32)
    with np.errstate(all="raise"):
        y = sigmoid(x)
    np.testing.assert_allclose(y, [0.0, 1 / (1 + np.exp(3.0)), 0.5, 1 / (1 + np.exp(-3.0)), 1.0], atol=1e-7)


@pytest.mark.parametrize("bias", [True, False])
def test_float32_step_follows_the_oracle(bias):
    model = tiny_model(None, bias=bias, cell="gru")
    _, states = model.forward_propagation(SENTENCE_X)
    h = model.initial_state(1, np.float32)
    for t, word in enumerate(SENTENCE_X):
        h = model.step(np.array([word]), h)
        assert h.dtype == np.float32
        np.testing.assert_allclose(model.readout(h)[0], states[t], rtol=1e-5, atol=1e-6)


def test_cell_bookkeeping():
    model = GRU(C, H, seed=1, classes=TINY_CLASSES)
    assert isinstance(model, RecurrentLM) and model.cell == "gru" and model.softmax == "class"
    assert model.input_matrix_names == ("Uz", "Ur", "Uh")
    assert model.parameter_names == ("Uz", "Ur", "Uh", "Wz", "Wr", "Wh", "bz", "br", "bh", "V", "c", "V_class", "c_class")
    assert GRU(C, H, bias=False).parameter_names == ("Uz", "Ur", "Uh", "Wz", "Wr", "Wh", "V")
    copy = model.astype(np.float64)
    assert type(copy) is GRU and all(p.dtype == np.float64 for p in copy.parameters().values())
    assert model.Wh.dtype == np.float32  # the original is untouched
    other = GRU(C, H, seed=2, classes=TINY_CLASSES)
    other.set_parameters(model.parameters())
    for name, value in model.parameters().items():
        np.testing.assert_array_equal(other.parameters()[name], value)
    with pytest.raises(ValueError, match="shape"):
        other.set_parameters({**model.parameters(), "Wz": np.zeros((H, H + 1))})

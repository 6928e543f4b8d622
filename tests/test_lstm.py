"""What only the LSTM has: its gates' roles, its (h, c) state, the forget gate's start, the oracle
under the truncations the shared checks leave out, and its bookkeeping. The checks every cell
shares (central differences, batched = sum of oracles, float32 against float64) are in
test_gradients.py, the contract's in test_model_contract.py."""
from __future__ import annotations

import numpy as np
import pytest

from models.lstm import LSTM
from models.recurrent_lm import RecurrentLM
from tests.gradient_check import (
    C, CELL_STEPS, H, SENTENCE_X, SENTENCE_Y, TINY_CLASSES, assert_bptt_matches_central_differences, tiny_model,
)


def test_forget_gate_keeps_the_memory_and_input_gate_admits_the_candidate():
    model = tiny_model(None, cell="lstm")
    prev = np.array([0.3, -0.2, 0.5, 0.1, 0.9, -0.4, 0.2, 0.6])  # h then c
    model.bf[:], model.bi[:] = 40.0, -40.0  # f = 1, i = 0: the memory is kept as it was
    np.testing.assert_allclose(model._oracle_step(2, prev)[H:], prev[H:], atol=1e-12)
    model.bf[:], model.bi[:] = -40.0, 40.0  # f = 0, i = 1: the memory is the candidate
    candidate = np.tanh(model.Ug[:, 2] + model.Wg @ prev[:H] + model.bg)
    new = model._oracle_step(2, prev)
    np.testing.assert_allclose(new[H:], candidate, atol=1e-12)
    output_gate = 1.0 / (1.0 + np.exp(-(model.Uo[:, 2] + model.Wo @ prev[:H] + model.bo)))
    np.testing.assert_allclose(new[:H], output_gate * np.tanh(candidate), atol=1e-12)


def test_the_state_is_h_and_c_and_the_output_layer_reads_h():
    model = tiny_model(None, cell="lstm")
    state = model.initial_state(3)
    assert state.shape == (3, 2 * H) and not state.any()
    state = model.step(np.array([1, 4, 3]), state)
    assert model.readout(state).shape == (3, H)
    assert np.any(state[:, H:] != state[:, :H])  # the memory is not the hidden vector
    np.testing.assert_allclose(model.readout(state)[0], model._oracle_step(1, model._oracle_start())[:H], rtol=1e-12)


def test_the_forget_gate_bias_starts_at_one():
    model = LSTM(C, H, seed=0)
    assert np.all(model.bf == 1.0) and not model.bi.any() and not model.bo.any() and not model.bg.any()


@pytest.mark.parametrize("bptt_truncate", [0, 2])
@pytest.mark.parametrize("softmax", ["full", "class"])
def test_bptt_matches_central_differences_at_the_other_truncations(bptt_truncate, softmax):
    model = tiny_model(bptt_truncate, softmax=softmax, cell="lstm")
    assert_bptt_matches_central_differences(model, SENTENCE_X, SENTENCE_Y, CELL_STEPS["lstm"])


def test_cell_bookkeeping():
    model = LSTM(C, H, seed=1, classes=TINY_CLASSES)
    assert isinstance(model, RecurrentLM) and model.cell == "lstm" and model.softmax == "class"
    assert model.input_matrix_names == ("Ui", "Uf", "Uo", "Ug")
    assert model.parameter_names == ("Ui", "Uf", "Uo", "Ug", "Wi", "Wf", "Wo", "Wg", "bi", "bf", "bo", "bg",
                                     "V", "c", "V_class", "c_class")
    assert LSTM(C, H, bias=False).parameter_names == ("Ui", "Uf", "Uo", "Ug", "Wi", "Wf", "Wo", "Wg", "V")
    copy = model.astype(np.float64)
    assert type(copy) is LSTM and all(p.dtype == np.float64 for p in copy.parameters().values())
    assert model.Wg.dtype == np.float32

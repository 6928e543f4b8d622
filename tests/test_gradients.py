"""The analytic gradients against central differences (float64), and the fast path against the
oracle, for every cell (the Elman RNN, the GRU and the LSTM)."""
from __future__ import annotations

import numpy as np
import pytest

from models.batching import make_batch
from models.cells import cell_class
from models.gru import GRU
from models.lstm import LSTM
from models.rnn import RNN
from tests.gradient_check import (
    C, CELL_STEPS, SENTENCE_X, SENTENCE_Y, TOLERANCE, assert_batched_gradient_equals_sum_of_bptt,
    assert_bptt_matches_central_differences, assert_dropout_gradient_matches_central_differences,
    assert_float32_fast_path_matches_float64_oracle, classes_for, numerical_gradients, random_sentences,
    relative_error, tiny_model, untrained_loss,
)

SOFTMAXES = ["full", "class"]
CELLS = ["rnn", "gru", "lstm"]
RECURRENT_MATRICES = {"rnn": ("W",), "gru": ("Wz", "Wr", "Wh"), "lstm": ("Wi", "Wf", "Wo", "Wg")}


@pytest.mark.parametrize("bptt_truncate", [None, 1, 3])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("softmax", SOFTMAXES)
@pytest.mark.parametrize("cell", CELLS)
def test_bptt_matches_central_differences(bptt_truncate, bias, softmax, cell):
    model = tiny_model(bptt_truncate, bias, softmax=softmax, cell=cell)
    assert_bptt_matches_central_differences(model, SENTENCE_X, SENTENCE_Y, CELL_STEPS[cell])


@pytest.mark.parametrize("cell", CELLS)
def test_truncations_differ_from_full_bptt(cell):
    """The truncated gradients are really truncated (else the checks above would test one thing)."""
    full = dict(zip(tiny_model(None, cell=cell).parameter_names, tiny_model(None, cell=cell).bptt(SENTENCE_X, SENTENCE_Y)))
    short = dict(zip(tiny_model(1, cell=cell).parameter_names, tiny_model(1, cell=cell).bptt(SENTENCE_X, SENTENCE_Y)))
    for name in RECURRENT_MATRICES[cell]:
        assert relative_error(full[name], short[name]) > 1e-3, name


def test_relative_error_refuses_zero_over_zero():
    with pytest.raises(AssertionError):
        relative_error(np.zeros(3), np.zeros(3))
    with pytest.raises(AssertionError):
        relative_error(np.array([np.nan]), np.array([1.0]))


@pytest.mark.parametrize("cell", CELLS)
def test_gradient_check_catches_a_wrong_gradient(cell):
    model = tiny_model(None, cell=cell)
    name = RECURRENT_MATRICES[cell][-1]
    analytic = dict(zip(model.parameter_names, model.bptt(SENTENCE_X, SENTENCE_Y)))[name].copy()
    numeric = numerical_gradients(model, SENTENCE_X, SENTENCE_Y, CELL_STEPS[cell])[name]
    analytic[0, 0] += 1e-3
    assert relative_error(analytic, numeric) > TOLERANCE


@pytest.mark.parametrize("cell", CELLS)
def test_gradient_check_catches_a_wrong_truncation(cell):
    """The oracle under truncation 2 against central differences of the loss truncated at 1."""
    analytic = dict(zip(tiny_model(2, cell=cell).parameter_names, tiny_model(2, cell=cell).bptt(SENTENCE_X, SENTENCE_Y)))
    numeric = numerical_gradients(tiny_model(1, cell=cell), SENTENCE_X, SENTENCE_Y, CELL_STEPS[cell])
    for name in RECURRENT_MATRICES[cell]:
        assert relative_error(analytic[name], numeric[name]) > 1e-3, name


@pytest.mark.parametrize("bptt_truncate", [None, 0, 2, 5])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("softmax", SOFTMAXES)
@pytest.mark.parametrize("cell", CELLS)
def test_batched_gradient_equals_sum_of_bptt(bptt_truncate, bias, softmax, cell):
    model = tiny_model(bptt_truncate, bias, softmax=softmax, cell=cell)
    assert_batched_gradient_equals_sum_of_bptt(model, np.random.default_rng(7))


@pytest.mark.parametrize("bptt_truncate", [None, 0, 3])
@pytest.mark.parametrize("softmax", SOFTMAXES)
@pytest.mark.parametrize("cell", CELLS)
def test_float32_fast_path_matches_float64_oracle(bptt_truncate, softmax, cell):
    rng = np.random.default_rng(11)
    model32 = cell_class(cell)(50, 16, bptt_truncate=bptt_truncate, seed=5, classes=classes_for(50, softmax))
    if cell != "rnn":  # input weights as train.py's --input-init makes them: gates that vary by word
        for name in model32.input_matrix_names:
            getattr(model32, name)[:] = rng.uniform(-1, 1, (16, 50))
    assert_float32_fast_path_matches_float64_oracle(model32, rng)


@pytest.mark.parametrize("softmax", SOFTMAXES)
@pytest.mark.parametrize("cell", CELLS)
def test_output_probabilities_sum_to_one(softmax, cell):
    model = tiny_model(None, softmax=softmax, cell=cell)
    o, _ = model.forward_propagation(SENTENCE_X)
    assert np.all(o > 0)
    np.testing.assert_allclose(o.sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("model_class", [RNN, GRU, LSTM])
def test_untrained_loss_is_log_vocabulary_size(model_class):
    assert abs(untrained_loss(model_class(8000, 100, seed=0)) - np.log(8000)) < 0.05


@pytest.mark.parametrize("softmax", SOFTMAXES)
@pytest.mark.parametrize("cell", CELLS)
def test_calculate_loss_matches_forward_propagation(softmax, cell):
    rng = np.random.default_rng(2)
    model = tiny_model(4, softmax=softmax, cell=cell)
    sentences = random_sentences(rng, 5, C)
    X, Y = [s[:-1] for s in sentences], [s[1:] for s in sentences]
    total = sum(-np.log(model.forward_propagation(x)[0][np.arange(len(y)), y]).sum() for x, y in zip(X, Y))
    assert model.calculate_loss(X, Y) == pytest.approx(total / sum(len(y) for y in Y), rel=1e-12)


@pytest.mark.parametrize("softmax", SOFTMAXES)
def test_threaded_output_layer_equals_single_threaded(softmax):
    rng = np.random.default_rng(4)
    model = RNN(300, 16, bptt_truncate=None, seed=2, classes=classes_for(300, softmax))
    sentences = random_sentences(rng, 40, 300, max_len=30)  # several hundred rows: really split
    batch = make_batch([s[:-1] for s in sentences], [s[1:] for s in sentences])
    assert batch.n_tokens > 400
    loss1, grads1 = model.batch_loss_and_gradients(batch.inputs, batch.targets, batch.mask)
    logp1 = model.token_log_probs(batch.inputs, batch.targets, batch.mask)
    model.threads = 2
    loss2, grads2 = model.batch_loss_and_gradients(batch.inputs, batch.targets, batch.mask)
    logp2 = model.token_log_probs(batch.inputs, batch.targets, batch.mask)
    assert loss2 == pytest.approx(loss1, rel=1e-6)
    np.testing.assert_allclose(logp2, logp1, rtol=1e-6)
    for name in model.parameter_names:
        np.testing.assert_allclose(grads2[name], grads1[name], rtol=1e-4, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("softmax", SOFTMAXES)
@pytest.mark.parametrize("cell", CELLS)
def test_dropout_gradient_matches_central_differences(softmax, cell):
    """The batched path differentiated directly (full BPTT: then its gradient is the true derivative)."""
    model = tiny_model(None, softmax=softmax, cell=cell)
    assert_dropout_gradient_matches_central_differences(model, np.random.default_rng(8))

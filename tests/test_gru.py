"""The GRU cell: its gradients against central differences (float64), the batched fast path against
the one-sentence oracle, the gate convention, and the one-step function generation uses."""
from __future__ import annotations

import numpy as np
import pytest

from models.batching import make_batch
from models.gru import GRU, sigmoid
from models.recurrent_lm import RecurrentLM
from models.word_classes import WordClasses
from tests.gradient_check import (
    TOLERANCE, classes_for, numerical_gradients, random_sentences, relative_error,
)

C, H = 7, 4
TINY_CLASSES = WordClasses(np.array([0, 1, 2, 3, 5, 7]))
SOFTMAXES = ["full", "class"]
SENTENCE_X = [1, 4, 3, 6, 2, 5, 3, 4]
SENTENCE_Y = [4, 3, 6, 2, 5, 3, 4, 2]


def gru_step(p: dict, word: int, h: np.ndarray, bias: bool) -> np.ndarray:
    """Cho et al.'s GRU step written out directly, with its own logistic function."""
    def logistic(v):
        return 1.0 / (1.0 + np.exp(-v))

    b = {name: (p[name] if bias else 0.0) for name in ("bz", "br", "bh")}
    z = logistic(p["Uz"][:, word] + p["Wz"] @ h + b["bz"])
    r = logistic(p["Ur"][:, word] + p["Wr"] @ h + b["br"])
    candidate = np.tanh(p["Uh"][:, word] + p["Wh"] @ (r * h) + b["bh"])
    return (1.0 - z) * candidate + z * h


def tiny_gru(bptt_truncate, bias=True, seed=3, softmax="full") -> GRU:
    """float64, with weights larger than the initialisation so every path carries signal."""
    model = GRU(C, H, bptt_truncate=bptt_truncate, seed=seed, bias=bias, dtype=np.float64,
                classes=TINY_CLASSES if softmax == "class" else None)
    rng = np.random.default_rng(seed)
    for name, value in model.parameters().items():
        setattr(model, name, rng.normal(0, 0.3 if value.ndim == 1 else 0.8, value.shape))
    return model


@pytest.mark.parametrize("bptt_truncate", [None, 1, 3])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("softmax", SOFTMAXES)
def test_gru_bptt_matches_central_differences(bptt_truncate, bias, softmax):
    model = tiny_gru(bptt_truncate, bias, softmax=softmax)
    analytic = dict(zip(model.parameter_names, model.bptt(SENTENCE_X, SENTENCE_Y)))
    numeric = numerical_gradients(model, SENTENCE_X, SENTENCE_Y, gru_step)
    for name in model.parameter_names:
        assert relative_error(analytic[name], numeric[name]) < TOLERANCE, name


def test_gru_truncations_differ_from_full_bptt():
    """The truncated gradients are really truncated (else the checks above would test one thing)."""
    full = dict(zip(tiny_gru(None).parameter_names, tiny_gru(None).bptt(SENTENCE_X, SENTENCE_Y)))
    short = dict(zip(tiny_gru(1).parameter_names, tiny_gru(1).bptt(SENTENCE_X, SENTENCE_Y)))
    for name in ("Wz", "Wr", "Wh", "Uz"):
        assert relative_error(full[name], short[name]) > 1e-3, name


def test_gru_gradient_check_catches_a_wrong_gradient():
    model = tiny_gru(2)
    analytic = dict(zip(model.parameter_names, model.bptt(SENTENCE_X, SENTENCE_Y)))["Wr"].copy()
    numeric = numerical_gradients(model, SENTENCE_X, SENTENCE_Y, gru_step)["Wr"]
    analytic[1, 2] += 1e-3
    assert relative_error(analytic, numeric) > TOLERANCE


@pytest.mark.parametrize("bptt_truncate", [None, 0, 2, 5])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("softmax", SOFTMAXES)
def test_gru_batched_gradient_equals_sum_of_bptt(bptt_truncate, bias, softmax):
    rng = np.random.default_rng(7)
    model = tiny_gru(bptt_truncate, bias, softmax=softmax)
    sentences = random_sentences(rng, 6, C)
    inputs, targets = [s[:-1] for s in sentences], [s[1:] for s in sentences]
    expected = [np.zeros_like(p) for p in model.parameters().values()]
    expected_loss = 0.0
    for x, y in zip(inputs, targets):
        expected = [e + g for e, g in zip(expected, model.bptt(x, y))]
        o, _ = model.forward_propagation(x)
        expected_loss -= np.log(o[np.arange(len(y)), y]).sum()
    batch = make_batch(inputs, targets)
    assert batch.mask.sum() < batch.mask.size  # the batch really has padding
    assert max(len(x) for x in inputs) > (bptt_truncate or 0) + 1  # the truncation really cuts
    loss, grads = model.batch_loss_and_gradients(batch.inputs, batch.targets, batch.mask, scale=0.5)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    assert set(grads) == set(model.parameter_names)
    for name, e in zip(model.parameter_names, expected):
        np.testing.assert_allclose(grads[name], 0.5 * e, rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("bptt_truncate", [None, 0, 3])
@pytest.mark.parametrize("softmax", SOFTMAXES)
def test_gru_float32_fast_path_matches_float64_oracle(bptt_truncate, softmax):
    rng = np.random.default_rng(11)
    model32 = GRU(50, 16, bptt_truncate=bptt_truncate, seed=5, classes=classes_for(50, softmax))
    model32.Uz[:] = rng.uniform(-1, 1, model32.Uz.shape)  # as train.py's --input-init: gates that vary
    model64 = model32.astype(np.float64)
    assert model64.Uz.dtype == np.float64 and model32.Uz.dtype == np.float32
    sentences = random_sentences(rng, 8, 50, max_len=20)
    inputs, targets = [s[:-1] for s in sentences], [s[1:] for s in sentences]
    batch = make_batch(inputs, targets)
    _, fast = model32.batch_loss_and_gradients(batch.inputs, batch.targets, batch.mask)
    slow = [np.zeros_like(p) for p in model64.parameters().values()]
    for x, y in zip(inputs, targets):
        slow = [s + g for s, g in zip(slow, model64.bptt(x, y))]
    for name, s in zip(model64.parameter_names, slow):
        assert fast[name].dtype == np.float32
        np.testing.assert_allclose(fast[name], s, rtol=2e-4, atol=2e-6, err_msg=name)


def test_untrained_gru_loss_is_log_vocabulary_size():
    rng = np.random.default_rng(0)
    model = GRU(8000, 100, seed=0)
    sentences = random_sentences(rng, 20, 8000, max_len=30)
    loss = model.calculate_loss([s[:-1] for s in sentences], [s[1:] for s in sentences])
    assert abs(loss - np.log(8000)) < 0.05


def test_update_gate_near_one_keeps_the_state_near_zero_takes_the_candidate():
    """Cho et al.'s convention: s_t = (1 - z) h~ + z s_{t-1}."""
    model = tiny_gru(None)
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
def test_step_function_follows_the_oracle(bias):
    model = tiny_gru(None, bias=bias)
    _, states = model.forward_propagation(SENTENCE_X)
    advance = model.step_function(np.float32)
    h = np.zeros(H, dtype=np.float32)
    for t, word in enumerate(SENTENCE_X):
        h = advance(word, h)
        assert h.dtype == np.float32
        np.testing.assert_allclose(h, states[t], rtol=1e-5, atol=1e-6)


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
    for name in model.parameter_names:
        np.testing.assert_array_equal(getattr(other, name), getattr(model, name))
    with pytest.raises(ValueError, match="shape"):
        other.set_parameters({**model.parameters(), "Wz": np.zeros((H, H + 1))})

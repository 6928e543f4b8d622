"""The analytic gradients against central differences (float64), and the fast path against the oracle."""
from __future__ import annotations

import numpy as np
import pytest

from models.batching import make_batch
from models.rnn import RNN
from models.word_classes import WordClasses
from tests.gradient_check import (
    STEP, TOLERANCE, classes_for, numerical_gradients, random_sentences, relative_error,
)

C, H = 7, 4
# the specials alone, then words 3-4 and 5-6: every kind of class the layer has
TINY_CLASSES = WordClasses(np.array([0, 1, 2, 3, 5, 7]))
SOFTMAXES = ["full", "class"]


def tiny_model(bptt_truncate, bias=True, seed=3, softmax="full") -> RNN:
    classes = TINY_CLASSES if softmax == "class" else None
    model = RNN(C, H, bptt_truncate=bptt_truncate, seed=seed, bias=bias, dtype=np.float64, classes=classes)
    rng = np.random.default_rng(seed)
    # larger weights than the initialisation, so every path of the gradient carries signal
    model.U = rng.normal(0, 0.8, model.U.shape)
    model.W = rng.normal(0, 0.8, model.W.shape)
    model.V = rng.normal(0, 0.8, model.V.shape)
    model.b = rng.normal(0, 0.3, model.b.shape)
    model.c = rng.normal(0, 0.3, model.c.shape)
    if classes is not None:
        model.V_class = rng.normal(0, 0.8, model.V_class.shape)
        model.c_class = rng.normal(0, 0.3, model.c_class.shape)
    return model


def rnn_step(p: dict, word: int, h: np.ndarray, bias: bool) -> np.ndarray:
    """The Elman step written out directly: tanh(U x + W h + b)."""
    return np.tanh(p["U"][:, word] + p["W"] @ h + (p["b"] if bias else 0.0))


SENTENCE_X = [1, 4, 3, 6, 2, 5, 3, 4]
SENTENCE_Y = [4, 3, 6, 2, 5, 3, 4, 2]


@pytest.mark.parametrize("bptt_truncate", [None, 1, 3])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("softmax", SOFTMAXES)
def test_bptt_matches_central_differences(bptt_truncate, bias, softmax):
    model = tiny_model(bptt_truncate, bias, softmax=softmax)
    analytic = dict(zip(model.parameter_names, model.bptt(SENTENCE_X, SENTENCE_Y)))
    numeric = numerical_gradients(model, SENTENCE_X, SENTENCE_Y, rnn_step)
    for name in model.parameter_names:
        assert relative_error(analytic[name], numeric[name]) < TOLERANCE, name


def test_truncations_differ_from_full_bptt():
    """The truncated gradients are really truncated (else the checks above would test one thing)."""
    full = tiny_model(None).bptt(SENTENCE_X, SENTENCE_Y)
    short = tiny_model(1).bptt(SENTENCE_X, SENTENCE_Y)
    assert relative_error(full[2], short[2]) > 1e-3  # dL/dW


def test_relative_error_refuses_zero_over_zero():
    with pytest.raises(AssertionError):
        relative_error(np.zeros(3), np.zeros(3))
    with pytest.raises(AssertionError):
        relative_error(np.array([np.nan]), np.array([1.0]))


def test_gradient_check_catches_a_wrong_gradient():
    model = tiny_model(None)
    analytic = model.bptt(SENTENCE_X, SENTENCE_Y)[2].copy()
    numeric = numerical_gradients(model, SENTENCE_X, SENTENCE_Y, rnn_step)["W"]
    analytic[0, 0] += 1e-3
    assert relative_error(analytic, numeric) > TOLERANCE


@pytest.mark.parametrize("bptt_truncate", [None, 0, 2, 5])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("softmax", SOFTMAXES)
def test_batched_gradient_equals_sum_of_bptt(bptt_truncate, bias, softmax):
    rng = np.random.default_rng(7)
    model = tiny_model(bptt_truncate, bias, softmax=softmax)
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
    loss, grads = model.batch_loss_and_gradients(batch.inputs, batch.targets, batch.mask, scale=0.5)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    for name, e in zip(model.parameter_names, expected):
        np.testing.assert_allclose(grads[name], 0.5 * e, rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("bptt_truncate", [None, 0, 3])
@pytest.mark.parametrize("softmax", SOFTMAXES)
def test_float32_fast_path_matches_float64_oracle(bptt_truncate, softmax):
    rng = np.random.default_rng(11)
    model32 = RNN(50, 16, bptt_truncate=bptt_truncate, seed=5, classes=classes_for(50, softmax))
    model64 = model32.astype(np.float64)
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


@pytest.mark.parametrize("softmax", SOFTMAXES)
def test_output_probabilities_sum_to_one(softmax):
    model = tiny_model(None, softmax=softmax)
    o, _ = model.forward_propagation(SENTENCE_X)
    assert np.all(o > 0)
    np.testing.assert_allclose(o.sum(axis=1), 1.0, rtol=1e-12)


def test_untrained_loss_is_log_vocabulary_size():
    rng = np.random.default_rng(0)
    model = RNN(8000, 100, seed=0)
    sentences = random_sentences(rng, 20, 8000, max_len=30)
    loss = model.calculate_loss([s[:-1] for s in sentences], [s[1:] for s in sentences])
    assert abs(loss - np.log(8000)) < 0.05


@pytest.mark.parametrize("softmax", SOFTMAXES)
def test_calculate_loss_matches_forward_propagation(softmax):
    rng = np.random.default_rng(2)
    model = tiny_model(4, softmax=softmax)
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
def test_dropout_gradient_matches_central_differences(softmax):
    """With the dropout mask held fixed (the same generator seed), the batched gradient is the
    derivative of the batched loss."""
    rng = np.random.default_rng(8)
    model = tiny_model(None, softmax=softmax)  # full BPTT: the gradient is then the true derivative
    sentences = random_sentences(rng, 4, C)
    batch = make_batch([s[:-1] for s in sentences], [s[1:] for s in sentences])

    def loss_and_grads():
        return model.batch_loss_and_gradients(batch.inputs, batch.targets, batch.mask, dropout=0.4,
                                              rng=np.random.default_rng(3))

    loss, grads = loss_and_grads()
    no_dropout, _ = model.batch_loss_and_gradients(batch.inputs, batch.targets, batch.mask)
    assert loss != pytest.approx(no_dropout)  # the mask really changed something
    for name, param in model.parameters().items():
        numeric = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            old = param[index]
            param[index] = old + STEP
            up = loss_and_grads()[0]
            param[index] = old - STEP
            down = loss_and_grads()[0]
            param[index] = old
            numeric[index] = (up - down) / (2 * STEP)
        if name == "U":  # only the batch's input words have a gradient; compare those columns
            used = np.unique(batch.inputs)
            assert relative_error(grads[name][:, used], numeric[:, used]) < TOLERANCE
        else:
            assert relative_error(grads[name], numeric) < TOLERANCE, name

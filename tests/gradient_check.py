"""Helpers of the gradient checks, for every cell: tiny float64 models, each cell's step and the loss
written out directly (independent of the models' code), central differences, a comparison that
cannot pass by accident, and the checks the cells share."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from models.batching import make_batch
from models.cells import cell_class
from models.recurrent_lm import RecurrentLM
from models.word_classes import WordClasses

STEP = 1e-5
TOLERANCE = 1e-6

# one step of a cell written out directly: (live or frozen parameters, word, previous state, has biases) -> state
CellStep = Callable[[dict, int, np.ndarray, bool], np.ndarray]

C, H = 7, 4
# the specials alone, then words 3-4 and 5-6: every kind of class the layer has
TINY_CLASSES = WordClasses(np.array([0, 1, 2, 3, 5, 7]))


def tiny_model(bptt_truncate, bias=True, seed=3, softmax="full", cell="rnn", activation="tanh") -> RecurrentLM:
    """float64, with larger weights than the initialisation, so every path of the gradient carries signal."""
    classes = TINY_CLASSES if softmax == "class" else None
    model = cell_class(cell)(C, H, bptt_truncate=bptt_truncate, seed=seed, bias=bias, dtype=np.float64, classes=classes,
                             activation=activation)
    rng = np.random.default_rng(seed)
    if cell == "rnn":  # the draws the RNN's checks have always made
        names = ("U", "W", "V", "b", "c") + (("V_class", "c_class") if classes is not None else ())
    else:
        names = model.NAMES_WITH_BIAS + model.output.NAMES_WITH_BIAS
    for name in names:
        owner = model.output if name in model.output.NAMES_WITH_BIAS else model
        value = getattr(owner, name)
        setattr(owner, name, rng.normal(0, 0.3 if value.ndim == 1 else 0.8, value.shape))
    return model


def rnn_step(p: dict, word: int, h: np.ndarray, bias: bool) -> np.ndarray:
    """The Elman step written out directly: tanh(U x + W h + b)."""
    return np.tanh(p["U"][:, word] + p["W"] @ h + (p["b"] if bias else 0.0))


def gru_step(p: dict, word: int, h: np.ndarray, bias: bool) -> np.ndarray:
    """Cho et al.'s GRU step written out directly, with its own logistic function."""
    def logistic(v):
        return 1.0 / (1.0 + np.exp(-v))

    b = {name: (p[name] if bias else 0.0) for name in ("bz", "br", "bh")}
    z = logistic(p["Uz"][:, word] + p["Wz"] @ h + b["bz"])
    r = logistic(p["Ur"][:, word] + p["Wr"] @ h + b["br"])
    candidate = np.tanh(p["Uh"][:, word] + p["Wh"] @ (r * h) + b["bh"])
    return (1.0 - z) * candidate + z * h


def relu_rnn_step(p: dict, word: int, h: np.ndarray, bias: bool) -> np.ndarray:
    """The Elman step with ReLU written out directly: max(U x + W h + b, 0)."""
    return np.maximum(p["U"][:, word] + p["W"] @ h + (p["b"] if bias else 0.0), 0.0)


def lstm_step(p: dict, word: int, state: np.ndarray, bias: bool) -> np.ndarray:
    """The LSTM step written out directly on the state [h; c], with its own logistic function."""
    def logistic(v):
        return 1.0 / (1.0 + np.exp(-v))

    h, c = np.split(state, 2)
    pre = {gate: p["U" + gate][:, word] + p["W" + gate] @ h + (p["b" + gate] if bias else 0.0) for gate in "ifog"}
    c = logistic(pre["f"]) * c + logistic(pre["i"]) * np.tanh(pre["g"])
    return np.concatenate([logistic(pre["o"]) * np.tanh(c), c])


CELL_STEPS = {"rnn": rnn_step, "gru": gru_step, "rnn-relu": relu_rnn_step, "lstm": lstm_step}
STATE_PARTS = {"lstm": 2}  # the written-out steps' state, in hidden-vector widths (h then c); else 1
SENTENCE_X = [1, 4, 3, 6, 2, 5, 3, 4]
SENTENCE_Y = [4, 3, 6, 2, 5, 3, 4, 2]


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """||a - n|| / (||a|| + ||n||); refuses to compare two zero or non-finite gradients."""
    assert np.all(np.isfinite(analytic)) and np.all(np.isfinite(numeric)), "non-finite gradient"
    scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    assert scale > 1e-8, "both gradients are zero: the comparison would prove nothing"
    return float(np.linalg.norm(analytic - numeric) / scale)


def log_softmax_at(logits: np.ndarray, index: int) -> float:
    logits = logits - logits.max()
    return float(logits[index] - np.log(np.exp(logits).sum()))


def output_log_prob(model: RecurrentLM, p: dict, h: np.ndarray, target: int) -> float:
    """log P(target | h) written out directly: the full softmax, or class then word within class."""
    c = p["c"] if model.bias else np.zeros(model.vocab_size)
    if model.classes is None:
        return log_softmax_at(p["V"] @ h + c, target)
    k = int(model.classes.word_class[target])
    words = model.classes.words_of(k)
    c_class = p["c_class"] if model.bias else 0.0
    return log_softmax_at(p["V_class"] @ h + c_class, k) + log_softmax_at(
        p["V"][words] @ h + c[words], target - words.start
    )


def truncated_loss(model: RecurrentLM, frozen: dict, x, y, step: CellStep) -> float:
    """Summed loss where output t sees the live parameters only at steps t-k..t.

    Steps before the window use the frozen copy, so differentiating this function with respect
    to the live parameters gives exactly the truncated gradient (k = None: every step is live).
    """
    live = model.parameters()
    k = model.bptt_truncate
    total = 0.0
    for t in range(len(y)):
        first_live = 0 if k is None else max(0, t - k)
        # written out, independent of the model's own start; the output reads the first H entries
        state = np.zeros(model.hidden_size * STATE_PARTS.get(model.cell, 1))
        for position in range(t + 1):
            state = step(live if position >= first_live else frozen, x[position], state, model.bias)
        total -= output_log_prob(model, live, state[: model.hidden_size], y[t])
    return total


def central_differences(params: dict[str, np.ndarray], loss: Callable[[], float]) -> dict[str, np.ndarray]:
    """d loss / d every entry of ``params`` (each changed in place, then restored)."""
    grads = {}
    for name, param in params.items():
        grad = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            old = param[index]
            param[index] = old + STEP
            up = loss()
            param[index] = old - STEP
            down = loss()
            param[index] = old
            grad[index] = (up - down) / (2 * STEP)
        grads[name] = grad
    return grads


def numerical_gradients(model: RecurrentLM, x, y, step: CellStep) -> dict[str, np.ndarray]:
    """Central differences of ``truncated_loss`` for every parameter entry."""
    frozen = {k: v.copy() for k, v in model.parameters().items()}
    return central_differences(model.parameters(), lambda: truncated_loss(model, frozen, x, y, step))


def assert_bptt_matches_central_differences(model: RecurrentLM, x, y, step: CellStep) -> None:
    analytic = dict(zip(model.parameter_names, model.bptt(x, y)))
    numeric = numerical_gradients(model, x, y, step)
    for name in model.parameter_names:
        assert relative_error(analytic[name], numeric[name]) < TOLERANCE, name


def summed_bptt(model: RecurrentLM, inputs, targets) -> tuple[dict[str, np.ndarray], float]:
    """The oracle over several sentences: summed gradients by name, and the summed loss."""
    total = {name: np.zeros_like(p) for name, p in model.parameters().items()}
    loss = 0.0
    for x, y in zip(inputs, targets):
        for name, g in zip(model.parameter_names, model.bptt(x, y)):
            total[name] += g
        o, _ = model.forward_propagation(x)
        loss -= np.log(o[np.arange(len(y)), y]).sum()
    return total, loss


def shifted_pairs(sentences):
    """Inputs (all but the last word) and targets (all but the first) of each sentence."""
    return [s[:-1] for s in sentences], [s[1:] for s in sentences]


def assert_batched_gradient_equals_sum_of_bptt(model: RecurrentLM, rng: np.random.Generator) -> None:
    """On a padded batch whose longest sentence is longer than the truncation window."""
    inputs, targets = shifted_pairs(random_sentences(rng, 6, model.vocab_size))
    expected, expected_loss = summed_bptt(model, inputs, targets)
    batch = make_batch(inputs, targets)
    assert batch.mask.sum() < batch.mask.size  # the batch really has padding
    assert batch.inputs.shape[0] > (model.bptt_truncate or 0) + 1  # the truncation really cuts
    loss, grads = model.batch_loss_and_gradients(batch.inputs, batch.targets, batch.mask, scale=0.5)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    assert set(grads) == set(model.parameter_names)
    for name, e in expected.items():
        np.testing.assert_allclose(grads[name], 0.5 * e, rtol=1e-10, atol=1e-12, err_msg=name)


def assert_float32_fast_path_matches_float64_oracle(model32: RecurrentLM, rng: np.random.Generator) -> None:
    model64 = model32.astype(np.float64)
    inputs, targets = shifted_pairs(random_sentences(rng, 8, model32.vocab_size, max_len=20))
    batch = make_batch(inputs, targets)
    _, fast = model32.batch_loss_and_gradients(batch.inputs, batch.targets, batch.mask)
    slow, _ = summed_bptt(model64, inputs, targets)
    for name, s in slow.items():
        assert fast[name].dtype == np.float32 and s.dtype == np.float64
        np.testing.assert_allclose(fast[name], s, rtol=2e-4, atol=2e-6, err_msg=name)


def untrained_loss(model: RecurrentLM) -> float:
    """Mean loss on random sentences: log(C) for a model that has learnt nothing."""
    return model.calculate_loss(*shifted_pairs(random_sentences(np.random.default_rng(0), 20, model.vocab_size, max_len=30)))


def assert_dropout_gradient_matches_central_differences(model: RecurrentLM, rng: np.random.Generator) -> None:
    """With the dropout mask held fixed (the same generator seed), the batched gradient is the
    derivative of the batched loss (the model must use full BPTT for that)."""
    batch = make_batch(*shifted_pairs(random_sentences(rng, 4, model.vocab_size)))

    def loss_and_grads():
        return model.batch_loss_and_gradients(batch.inputs, batch.targets, batch.mask, dropout=0.4,
                                              rng=np.random.default_rng(3))

    loss, grads = loss_and_grads()
    no_dropout, _ = model.batch_loss_and_gradients(batch.inputs, batch.targets, batch.mask)
    assert loss != pytest.approx(no_dropout)  # the mask really changed something
    numeric = central_differences(model.parameters(), lambda: loss_and_grads()[0])
    used = np.unique(batch.inputs)
    for name in model.parameter_names:
        if name in model.input_matrix_names:  # only the batch's input words have a gradient: compare those
            assert relative_error(grads[name][:, used], numeric[name][:, used]) < TOLERANCE, name
        else:
            assert relative_error(grads[name], numeric[name]) < TOLERANCE, name


def random_sentences(rng, count, vocab, max_len=9):
    return [list(rng.integers(0, vocab, size=rng.integers(2, max_len))) for _ in range(count)]


def classes_for(vocab_size: int, softmax: str) -> WordClasses | None:
    """Zipf-like counts binned into about sqrt(C) classes, or None for the full softmax."""
    if softmax == "full":
        return None
    counts = [50, 0, 40] + [int(1000 / r) + 1 for r in range(1, vocab_size - 2)]
    return WordClasses.from_counts(counts, WordClasses.default_count(vocab_size))

"""Helpers of the gradient checks, for every cell: central differences of a loss written out
directly (independent of the models' code), and a comparison that cannot pass by accident."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.recurrent_lm import RecurrentLM
from models.word_classes import WordClasses

STEP = 1e-5
TOLERANCE = 1e-6

# one step of a cell written out directly: (live or frozen parameters, word, previous state, has biases) -> state
CellStep = Callable[[dict, int, np.ndarray, bool], np.ndarray]


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
        h = np.zeros(model.hidden_size)
        for position in range(t + 1):
            h = step(live if position >= first_live else frozen, x[position], h, model.bias)
        total -= output_log_prob(model, live, h, y[t])
    return total


def numerical_gradients(model: RecurrentLM, x, y, step: CellStep) -> dict[str, np.ndarray]:
    """Central differences of ``truncated_loss`` for every parameter entry."""
    frozen = {k: v.copy() for k, v in model.parameters().items()}
    grads = {}
    for name, param in model.parameters().items():
        grad = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            old = param[index]
            param[index] = old + STEP
            up = truncated_loss(model, frozen, x, y, step)
            param[index] = old - STEP
            down = truncated_loss(model, frozen, x, y, step)
            param[index] = old
            grad[index] = (up - down) / (2 * STEP)
        grads[name] = grad
    return grads


def random_sentences(rng, count, vocab, max_len=9):
    return [list(rng.integers(0, vocab, size=rng.integers(2, max_len))) for _ in range(count)]


def classes_for(vocab_size: int, softmax: str) -> WordClasses | None:
    """Zipf-like counts binned into about sqrt(C) classes, or None for the full softmax."""
    if softmax == "full":
        return None
    counts = [50, 0, 40] + [int(1000 / r) + 1 for r in range(1, vocab_size - 2)]
    return WordClasses.from_counts(counts, WordClasses.default_count(vocab_size))

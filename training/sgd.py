"""Plain SGD with global-norm gradient clipping."""
from __future__ import annotations

import numpy as np


def global_norm(grads: dict[str, np.ndarray]) -> float:
    """L2 norm of all gradients taken together.

    A BLAS dot product per array, on its memory as laid out (no copy); a float32 overflow gives
    inf, which the caller treats like any other non-finite gradient.
    """
    total = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for g in grads.values():
            flat = g.ravel(order="K")
            total += float(np.dot(flat, flat))
    return float(np.sqrt(total))


def clip_by_global_norm(grads: dict[str, np.ndarray], max_norm: float | None) -> float:
    """Scale all gradients in place so their global norm is at most ``max_norm``; return the norm before."""
    norm = global_norm(grads)
    if max_norm is not None and max_norm > 0 and norm > max_norm:
        factor = np.float32(max_norm / norm)
        for g in grads.values():
            g *= factor.astype(g.dtype)
    return norm


def sgd_step(
    params: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    learning_rate: float,
    columns: dict[str, np.ndarray] | None = None,
) -> None:
    """params -= learning_rate * grads, in place (the gradients are overwritten).

    ``columns[name]`` lists the only columns of that gradient that can be non-zero (for an input
    matrix such as the RNN's ``U``, the batch's input words): just those are updated, which gives
    the same result for far less work.
    """
    rate = np.float32(learning_rate)
    for name, g in grads.items():
        p = params[name]
        if columns is not None and name in columns:
            used = columns[name]
            p[:, used] -= g[:, used] * rate.astype(g.dtype)
            continue
        g *= rate.astype(g.dtype)  # the gradients are spent: scale them in place
        p -= g

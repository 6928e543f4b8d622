"""Plain SGD with global-norm gradient clipping."""
from __future__ import annotations

import numpy as np


def global_norm(grads: dict[str, np.ndarray]) -> float:
    """L2 norm of all gradients taken together (float64, so float32 squares cannot overflow)."""
    return float(np.sqrt(sum(float(np.dot(g.ravel().astype(np.float64), g.ravel())) for g in grads.values())))


def clip_by_global_norm(grads: dict[str, np.ndarray], max_norm: float | None) -> float:
    """Scale all gradients in place so their global norm is at most ``max_norm``; return the norm before."""
    norm = global_norm(grads)
    if max_norm is not None and max_norm > 0 and norm > max_norm:
        factor = np.float32(max_norm / norm)
        for g in grads.values():
            g *= factor.astype(g.dtype)
    return norm


def sgd_step(params: dict[str, np.ndarray], grads: dict[str, np.ndarray], learning_rate: float) -> None:
    """params -= learning_rate * grads, in place."""
    for name, g in grads.items():
        p = params[name]
        p -= (g * p.dtype.type(learning_rate)).astype(p.dtype, copy=False)

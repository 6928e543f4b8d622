"""The Elman RNN's nonlinearities, each with its slope written in terms of its own output.

The backward pass only keeps the states s = f(a), so each activation gives f'(a) from s:
tanh' = 1 - s^2, relu' = [s > 0]. ReLU with an identity start is the IRNN of Le, Jaitly and
Hinton (2015): its Jacobian W^T diag(f') does not shrink the gradient where units are active.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Activation:
    name: str
    apply: Callable[..., np.ndarray]  # (pre-activation, out=None) -> state
    slope_from_output: Callable[[np.ndarray], np.ndarray]  # state -> f'(pre-activation)


def _relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.maximum(x, 0, out=out)


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", np.tanh, lambda s: 1.0 - s**2),
    "relu": Activation("relu", _relu, lambda s: (s > 0).astype(s.dtype)),
}


def activation_named(name: str) -> Activation:
    """The activation called ``name``; ValueError naming the known ones for any other."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r} (known: {', '.join(ACTIVATIONS)})")
    return ACTIVATIONS[name]

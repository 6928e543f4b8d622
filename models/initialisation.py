"""Starting points for the recurrent matrices (``--init``), a remedy for gradients that vanish
or explode from the first step. The gradient k steps back is a product of k Jacobians
W^T diag(f'): a random W (the tutorial's uniform start) spreads its singular values from about 0
to 2/sqrt(3) and turns the error's direction at every step, so the product shrinks fast; an
orthogonal W keeps every singular value at 1 and the identity (with ReLU: the IRNN) keeps the
error as it is wherever units are active.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the model imports this module for ``uniform``
    from models.recurrent_lm import RecurrentLM

INITS = ("uniform", "orthogonal", "identity")


def uniform(rng: np.random.Generator, fan_in: int, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """The tutorial's initialisation: uniform in +-1/sqrt(fan-in)."""
    bound = 1 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape).astype(dtype)


def orthogonal(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random orthogonal matrix, uniform over the orthogonal group (QR of a Gaussian, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((size, size)))
    return q * np.sign(np.diag(r))


def initialise_recurrent(matrices: list[np.ndarray], scheme: str, rng: np.random.Generator) -> None:
    """Overwrite each square recurrent matrix in place; "uniform" keeps the tutorial's start."""
    if scheme not in INITS:
        raise ValueError(f"unknown initialisation {scheme!r} (known: {', '.join(INITS)})")
    for matrix in matrices:
        if scheme == "orthogonal":
            matrix[:] = orthogonal(rng, matrix.shape[0])
        elif scheme == "identity":
            matrix[:] = np.eye(matrix.shape[0])


def start_recurrent(model: "RecurrentLM", scheme: str, rng: np.random.Generator) -> None:
    """Start every recurrent matrix of ``model`` with ``scheme`` and note it in ``model.init``, so
    that the model file records how training began."""
    initialise_recurrent([getattr(model, name) for name in model.RECURRENT_NAMES], scheme, rng)
    model.init = scheme

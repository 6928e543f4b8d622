"""The full-softmax output layer's forward and backward pass, fused and split over threads.

For the default model this layer is nearly all of the training cost: three (n x H) by (H x C)
matrix products and several element-wise passes over the n x C logits. NumPy runs element-wise
functions on one core, so the rows are cut into blocks and the blocks are shared among threads
(NumPy releases the GIL inside its kernels); each block's logits stay small enough to stay in
cache across the max, exp, sum and scaling passes. Run BLAS with one thread per worker thread
(see ``training.train``) so the two levels of threading do not fight over the cores.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from threadpoolctl import threadpool_limits

BLOCK_ROWS = 256
MIN_SPLIT_ROWS = 32


@dataclass
class OutputGradients:
    loss: float
    dV: np.ndarray
    dc: np.ndarray | None
    d_states: np.ndarray


def blas_limits_for(threads: int) -> threadpool_limits:
    """A context in which BLAS runs single-threaded if our own ``threads`` split the rows."""
    return threadpool_limits(1 if threads > 1 else None, user_api="blas")


@lru_cache(maxsize=None)
def _executor(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rnnlm-output")


def run_in_parts(work, bounds: np.ndarray, *args) -> list:
    """Run ``work(*args, first, last)`` for each consecutive pair of ``bounds``, one thread each."""
    if len(bounds) <= 2:
        return [work(*args, int(bounds[0]), int(bounds[-1]))]
    pool = _executor(len(bounds) - 1)
    futures = [pool.submit(work, *args, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    return [f.result() for f in futures]


def _split_rows(work, n: int, threads: int, *args) -> list:
    """Run ``work(*args, first, last)`` on contiguous row ranges, one per thread."""
    if threads <= 1 or n < 2 * MIN_SPLIT_ROWS:
        return [work(*args, 0, n)]
    return run_in_parts(work, np.linspace(0, n, threads + 1).astype(int), *args)


def _shifted_logits(states: np.ndarray, V: np.ndarray, c: np.ndarray | None) -> np.ndarray:
    """states V^T + c with each row's maximum subtracted (so exp cannot overflow)."""
    z = states @ V.T
    if c is not None:
        z += c
    z -= z.max(axis=1, keepdims=True)
    return z


@dataclass
class BlockGradients:
    """Where one block of rows adds its gradients: views into the caller's arrays."""

    dV: np.ndarray
    dc: np.ndarray | None
    d_states: np.ndarray


def softmax_block(
    s: np.ndarray, y: np.ndarray, V: np.ndarray, c: np.ndarray | None, scale: float = 1.0,
    grads: BlockGradients | None = None,
) -> np.ndarray:
    """log softmax(s V^T + c)[y] per row (float64); with ``grads``, also the gradients of
    ``scale`` times the rows' summed cross-entropy: added to ``grads.dV``/``grads.dc``, and
    written (not added) to ``grads.d_states``.

    One pass over the block's logits for max, exp, sum and the fused softmax/cross-entropy
    gradient ``scale * (p - onehot(y))``, computed in place.
    """
    dtype = V.dtype
    rows = np.arange(s.shape[0])
    z = _shifted_logits(s, V, c)
    picked = z[rows, y].astype(np.float64)
    np.exp(z, out=z)
    sums = z.sum(axis=1, keepdims=True)
    log_probs = picked - np.log(sums[:, 0].astype(np.float64))
    if grads is not None:
        z *= (scale / sums).astype(dtype)
        z[rows, y] -= dtype.type(scale)
        grads.dV += z.T @ s
        if grads.dc is not None:
            grads.dc += z.sum(axis=0)
        np.matmul(z, V, out=grads.d_states)
    return log_probs


def _rows_backward(states, targets, V, c, scale, d_states, first, last):
    """Loss, dV and dc of rows first..last; their d_states are written in place."""
    dV = np.zeros_like(V)
    dc = np.zeros(V.shape[0], dtype=V.dtype) if c is not None else None
    loss = 0.0
    for start in range(first, last, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, last)
        grads = BlockGradients(dV, dc, d_states[start:stop])
        loss -= float(softmax_block(states[start:stop], targets[start:stop], V, c, scale, grads).sum())
    return loss, dV, dc


def output_backward(
    states: np.ndarray, targets: np.ndarray, V: np.ndarray, c: np.ndarray | None, scale: float, threads: int = 1
) -> OutputGradients:
    """Summed cross-entropy of softmax(states V^T + c) against ``targets``; gradients times ``scale``."""
    d_states = np.empty_like(states)
    parts = _split_rows(_rows_backward, states.shape[0], threads, states, targets, V, c, scale, d_states)
    loss = sum(p[0] for p in parts)
    dV = parts[0][1]
    dc = parts[0][2]
    for _, more_dV, more_dc in parts[1:]:
        dV += more_dV
        if dc is not None:
            dc += more_dc
    return OutputGradients(loss, dV, dc, d_states)


def _rows_log_probs(states, targets, V, c, out, first, last):
    for start in range(first, last, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, last)
        out[start:stop] = softmax_block(states[start:stop], targets[start:stop], V, c)


def target_log_probs(
    states: np.ndarray, targets: np.ndarray, V: np.ndarray, c: np.ndarray | None, threads: int = 1
) -> np.ndarray:
    """log softmax(states V^T + c)[targets] for each row (forward only, for evaluation)."""
    out = np.empty(states.shape[0], dtype=V.dtype)
    _split_rows(_rows_log_probs, states.shape[0], threads, states, targets, V, c, out)
    return out

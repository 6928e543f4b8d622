"""The full-softmax output layer's forward and backward pass, fused and split over threads.

For the default model this layer is nearly all of the training cost: three (n x H) by (H x C)
matrix products and several element-wise passes over the n x C logits. NumPy runs element-wise
functions on one core, so the rows are cut into blocks and the blocks are shared among threads
(NumPy releases the GIL inside its kernels); each block's logits stay small enough to stay in
cache across the max, exp, sum and scaling passes. Run BLAS with one thread per worker thread
(see ``training.train``) so the two levels of threading do not fight over the cores.
"""
from __future__ import annotations

import os
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


def available_cores() -> int:
    """CPUs this process may run on: the default number of row threads."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def blas_limits_for(threads: int) -> threadpool_limits:
    """A context in which BLAS runs single-threaded if our own ``threads`` split the rows."""
    return threadpool_limits(1 if threads > 1 else None, user_api="blas")


@lru_cache(maxsize=None)
def _executor(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rnnlm-output")


def _split_rows(work, n: int, threads: int, *args) -> list:
    """Run ``work(*args, first, last)`` on contiguous row ranges, one per thread."""
    if threads <= 1 or n < 2 * MIN_SPLIT_ROWS:
        return [work(*args, 0, n)]
    bounds = np.linspace(0, n, threads + 1).astype(int)
    pool = _executor(threads)
    futures = [pool.submit(work, *args, a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    return [f.result() for f in futures]


def _shifted_logits(states: np.ndarray, V: np.ndarray, c: np.ndarray | None) -> np.ndarray:
    """states V^T + c with each row's maximum subtracted (so exp cannot overflow)."""
    z = states @ V.T
    if c is not None:
        z += c
    z -= z.max(axis=1, keepdims=True)
    return z


def _rows_backward(states, targets, V, c, scale, d_states, first, last):
    """Loss, dV and dc of rows first..last; their d_states are written in place."""
    dtype = V.dtype
    dV = np.zeros_like(V)
    dc = np.zeros(V.shape[0], dtype=dtype) if c is not None else None
    loss = 0.0
    for start in range(first, last, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, last)
        s = states[start:stop]
        y = targets[start:stop]
        rows = np.arange(stop - start)
        z = _shifted_logits(s, V, c)
        target_logit = z[rows, y].astype(np.float64)
        np.exp(z, out=z)
        sums = z.sum(axis=1, keepdims=True)
        loss += float(np.sum(np.log(sums[:, 0].astype(np.float64)) - target_logit))
        # softmax and cross-entropy gradient fused in place: scale * (p - onehot(y))
        z *= (scale / sums).astype(dtype)
        z[rows, y] -= dtype.type(scale)
        dV += z.T @ s
        if dc is not None:
            dc += z.sum(axis=0)
        np.matmul(z, V, out=d_states[start:stop])
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
        z = _shifted_logits(states[start:stop], V, c)
        picked = z[np.arange(stop - start), targets[start:stop]]
        out[start:stop] = picked - np.log(np.exp(z).sum(axis=1))


def target_log_probs(
    states: np.ndarray, targets: np.ndarray, V: np.ndarray, c: np.ndarray | None, threads: int = 1
) -> np.ndarray:
    """log softmax(states V^T + c)[targets] for each row (forward only, for evaluation)."""
    out = np.empty(states.shape[0], dtype=V.dtype)
    _split_rows(_rows_log_probs, states.shape[0], threads, states, targets, V, c, out)
    return out

"""The gradient-flow measurements behind ``training/diagnose.py``: how the error of an output
fades (or grows) on its way back through the hidden states, for any cell.

The tutorial's point, measured on a real model: dE_t / ds_{t-k} is dE_t / ds_t times k step
Jacobians, so its norm shrinks roughly like the product of their norms; truncation at k steps
throws away whatever reaches further back, which is little exactly when the gradient vanishes.
"""
from __future__ import annotations

import math

import numpy as np

from models.batching import make_batch
from models.recurrent_lm import RecurrentLM


def sentence_batches(sentences: list[list[int]], batch_size: int = 32) -> list:
    """Encoded sentences (SENTENCE_START ... SENTENCE_END) as padded batches, sorted by length so
    that padding stays small."""
    ordered = sorted(sentences, key=len)
    return [
        make_batch([s[:-1] for s in group], [s[1:] for s in group])
        for group in (ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size))
    ]


def lag_profile(model: RecurrentLM, batches: list, max_lag: int) -> dict:
    """For k = 0..max_lag, statistics of ||dE_{t+k} / ds_t|| over every (sentence, t) that has an
    output k steps later, and how many orders of magnitude the mean falls from lag 0 to lag k."""
    per_lag: list[list[np.ndarray]] = [[] for _ in range(max_lag + 1)]
    for batch in batches:
        norms = model.lagged_state_errors(batch.inputs, batch.targets, batch.mask, max_lag)
        for k in range(max_lag + 1):
            values = norms[k][np.isfinite(norms[k])]
            per_lag[k].append(values)
    rows = []
    for k, parts in enumerate(per_lag):
        values = np.concatenate(parts)
        if values.size == 0:
            rows.append({"lag": k, "count": 0})
            continue
        p10, p50, p90 = np.percentile(values, [10, 50, 90])
        rows.append({"lag": k, "count": int(values.size), "mean": float(values.mean()), "std": float(values.std()),
                     "p10": float(p10), "median": float(p50), "p90": float(p90)})
    base = rows[0].get("mean")
    for row in rows:
        if base and row.get("mean"):
            row["log10_fall"] = math.log10(base / row["mean"])
    return {"lags": rows}


def jacobian_profile(model: RecurrentLM, sentences: list[list[int]], max_lag: int) -> dict:
    """Singular values of the cell's memory matrix, and the mean over positions of
    log10 prod_{i<k} ||ds_{t-i} / ds_{t-i-1}||_2 for k = 1..max_lag (the bound on the fall)."""
    singular = np.linalg.svd(getattr(model, model.MEMORY_MATRIX).astype(np.float64), compute_uv=False)
    model64 = model.astype(np.float64)
    log_norms: list[np.ndarray] = []  # per sentence: log10 ||J_t|| for each step t >= 1
    for sentence in sentences:
        words = sentence[:-1]
        h = model64.initial_state(1)[0]
        steps = []
        for position, word in enumerate(words):
            if position > 0:
                steps.append(math.log10(np.linalg.norm(model64.state_jacobian(word, h), 2)))
            h = model64._oracle_step(word, h)
        log_norms.append(np.array(steps))
    products = []
    for k in range(1, max_lag + 1):
        sums = [np.convolve(steps, np.ones(k), mode="valid") for steps in log_norms if steps.size >= k]
        values = np.concatenate(sums) if sums else np.array([])
        products.append({"lag": k, "count": int(values.size),
                         "mean_log10_product": float(values.mean()) if values.size else None})
    return {"matrix": model.MEMORY_MATRIX, "largest_singular_value": float(singular[0]),
            "smallest_singular_value": float(singular[-1]), "jacobian_norm_products": products}


def truncation_share(model: RecurrentLM, batches: list, window: int) -> dict[str, float]:
    """For each recurrent-cell parameter, ||g_full - g_window|| / ||g_full||: the share of its
    full-BPTT gradient that truncation at ``window`` steps throws away."""
    totals: dict[int | None, dict[str, np.ndarray]] = {}
    for truncate in (None, window):
        summed: dict[str, np.ndarray] = {}
        for batch in batches:
            _, grads = model.batch_loss_and_gradients(batch.inputs, batch.targets, batch.mask, bptt_truncate=truncate)
            for name, grad in grads.items():
                summed[name] = summed.get(name, 0) + grad.astype(np.float64)
        totals[truncate] = summed
    full, cut = totals[None], totals[window]
    # the output layer's gradients do not depend on truncation
    return {
        name: float(np.linalg.norm(full[name] - cut[name]) / np.linalg.norm(full[name]))
        for name in model.cell_parameter_names if np.linalg.norm(full[name]) > 0
    }


def gradient_flow_report(model: RecurrentLM, sentences: list[list[int]], max_lag: int, window: int,
                         jacobian_sentences: int = 50) -> dict:
    """Everything the report gives for one model, as a JSON-ready dict."""
    batches = sentence_batches(sentences)
    return {
        "cell": model.cell,
        "activation": model.activation,
        "init": model.init,
        "hidden_size": model.hidden_size,
        "sentences": len(sentences),
        **lag_profile(model, batches, max_lag),
        **jacobian_profile(model, sentences[:jacobian_sentences], max_lag),
        "truncation_window": window,
        "truncation_share": truncation_share(model, batches, window),
    }

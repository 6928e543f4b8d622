"""The score transforms clients ask for by name (OpenAI's penalties and logit_bias, locally
typical sampling) and TGI's rule for when a request samples at all.

Each transform is a pure function over the scores of one sequence, shape (C,), or of a batch,
shape (B, C), with its settings as scalars or as (B, 1) columns, so the single-sequence Sampler
and a batched decoder call the same code and draw the same words. Scores are log-weights
(log-probabilities, or any logits: adding a constant to a row changes nothing here).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

Setting = float | np.ndarray  # one value, or a (B, 1) column of one value per sequence


def word_counts(generated_ids: Sequence[int], size: int) -> np.ndarray:
    """How often each of ``size`` words occurs in ``generated_ids``: the counts the penalties use."""
    return np.bincount(np.asarray(generated_ids, dtype=np.int64), minlength=size)


def penalize_frequency_presence(scores: np.ndarray, counts: np.ndarray, frequency: Setting,
                                presence: Setting) -> np.ndarray:
    """OpenAI's definitions: a word's score minus ``frequency`` times the times the sequence has
    generated it, minus ``presence`` if it has generated it at all. ``counts`` has the scores' shape."""
    return scores - counts * frequency - (counts > 0) * presence


def bias_vector(bias: Iterable[tuple[int, float]], size: int) -> np.ndarray:
    """OpenAI's logit_bias ((word id, amount) pairs) as one amount per word, 0 for the rest."""
    vector = np.zeros(size)
    for word_id, amount in bias:
        vector[word_id] = amount
    return vector


def add_logit_bias(scores: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """The scores with each word's bias added (``bias`` of the scores' shape, or (C,) for every row)."""
    return scores + bias


def typical_filter(probs: np.ndarray, mass: Setting) -> np.ndarray:
    """Locally typical sampling (Meister et al., 2022): keep the words whose surprise -log p is
    closest to the distribution's entropy, the fewest whose probabilities add up to ``mass``
    (words tied with the last one kept stay), and renormalise. ``probs`` rows sum to 1; words
    of probability 0 (already cut) stay cut. ``mass`` 1 keeps every word."""
    probs = np.asarray(probs, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        surprise = -np.log(probs)
        entropy = np.sum(np.where(probs > 0, probs * surprise, 0.0), axis=-1, keepdims=True)
        distance = np.where(probs > 0, np.abs(surprise - entropy), np.inf)
    order = np.argsort(distance, axis=-1, kind="stable")
    cumulative = np.cumsum(np.take_along_axis(probs, order, axis=-1), axis=-1)
    last = np.minimum(np.sum(cumulative < mass, axis=-1, keepdims=True), probs.shape[-1] - 1)
    threshold = np.take_along_axis(np.take_along_axis(distance, order, axis=-1), last, axis=-1)
    kept = np.where(distance <= threshold, probs, 0.0)
    return kept / kept.sum(axis=-1, keepdims=True)


def tgi_samples(do_sample: bool, temperature: float, top_k: int | None, top_p: float | None,
                typical_p: float | None) -> bool:
    """TGI's rule: a request samples if it says so, or if any warper would reshape the
    distribution (a temperature other than 1, top_k, top_p < 1, typical_p < 1); else it is greedy."""
    warped = (temperature != 1.0 or top_k is not None or (top_p is not None and top_p < 1.0)
              or (typical_p is not None and typical_p < 1.0))
    return do_sample or warped

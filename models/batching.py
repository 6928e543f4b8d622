"""Padded, time-major batches of sentences, grouped by length so padding stays small."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Batch:
    """Time-major (T x B) arrays; ``mask`` is 1 on real tokens and 0 on padding."""

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray

    @property
    def n_tokens(self) -> int:
        return int(self.mask.sum())


def make_batch(inputs: Sequence[Sequence[int]], targets: Sequence[Sequence[int]]) -> Batch:
    """Right-pad sentences (index 0, mask 0) into time-major arrays."""
    if len(inputs) != len(targets) or not inputs:
        raise ValueError("need the same, non-zero number of input and target sentences")
    T = max(len(x) for x in inputs)
    B = len(inputs)
    X = np.zeros((T, B), dtype=np.int64)
    Y = np.zeros((T, B), dtype=np.int64)
    M = np.zeros((T, B), dtype=np.float32)
    for j, (x, y) in enumerate(zip(inputs, targets)):
        if len(x) != len(y):
            raise ValueError("an input sentence and its targets differ in length")
        X[: len(x), j] = x
        Y[: len(y), j] = y
        M[: len(x), j] = 1.0
    return Batch(X, Y, M)


def scoring_order(inputs: Sequence[Sequence[int]]) -> list[int]:
    """Sentence indices by length (stable): the order in which ``scoring_batches`` lays them out."""
    return sorted(range(len(inputs)), key=lambda i: len(inputs[i]))


def scoring_batches(inputs: Sequence[Sequence[int]], targets: Sequence[Sequence[int]], size: int = 128) -> list[Batch]:
    """Sentences sorted by length and cut into batches: little padding where order does not matter.

    Column j of batch k holds sentence ``scoring_order(inputs)[k * size + j]``.
    """
    order = scoring_order(inputs)
    return [
        make_batch([inputs[i] for i in order[k : k + size]], [targets[i] for i in order[k : k + size]])
        for k in range(0, len(order), size)
    ]


def sentence_pairs(encoded: Sequence[Sequence[int]]) -> tuple[list, list]:
    """Inputs (all but the last token) and targets (all but SENTENCE_START) of each sentence."""
    return [s[:-1] for s in encoded], [s[1:] for s in encoded]


def length_buckets(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Sentence indices grouped into batches of similar length, in a random order.

    Sentences are shuffled, sorted by length (a stable sort keeps the shuffle among equals),
    cut into batches, and the batches are shuffled: each epoch sees different neighbours but
    every batch is nearly free of padding.
    """
    lengths = np.asarray(lengths)
    order = rng.permutation(lengths.size)
    order = order[np.argsort(lengths[order], kind="stable")]
    batches = [order[i : i + batch_size] for i in range(0, order.size, batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def padding_fraction(lengths: Sequence[int], batches: Sequence[np.ndarray]) -> float:
    """Share of padded cells in the given batches."""
    lengths = np.asarray(lengths)
    real = sum(int(lengths[b].sum()) for b in batches)
    cells = sum(int(lengths[b].max()) * len(b) for b in batches)
    return 1.0 - real / cells if cells else 0.0

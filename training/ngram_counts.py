"""Counting every n-gram of a corpus of any size in bounded memory, with NumPy.

The corpus is one flat int32 array of sentences, each SENTENCE_START w1 .. wn SENTENCE_END (a
memory-mapped token cache or an array in memory). A window of k tokens counts if it lies inside
one sentence. Windows are packed into int64 keys chained through their suffix, as the n-gram
table's contexts are (models.ngram_table):

    key_1(w)            = w
    key_k(w_1 .. w_k)   = rank_{k-1}(w_2 .. w_k) * C + w_1

where rank_{k-1} is the position of the suffix among the distinct (k-1)-grams, sorted by key. A
key is below (distinct (k-1)-grams) * C, so it fits an int64 at any order and vocabulary, where
the words side by side (17 bits each for 100k words) would not. Order k is counted in one pass
over the corpus, given the rank of every position's (k-1)-gram from the pass before (kept in a
memory-mapped file of one int32 per token): each chunk of positions is sorted and counted, the
counted chunks are merged, and they are written to disk whenever they outgrow the memory budget
(as KenLM's lmplz sorts and merges), so besides the result only one chunk and the budget are in
memory. The sorted distinct keys of each order are the result, with their raw counts.
"""
from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.sentences import EncodedSentences

log = logging.getLogger(__name__)

DEFAULT_CHUNK_TOKENS = 1 << 22
DEFAULT_MEMORY_BYTES = 1 << 29


@dataclass(frozen=True)
class GramCounts:
    """The distinct k-grams of a corpus: sorted chained keys and how often each occurs."""

    keys: np.ndarray  # int64, sorted: rank of the suffix among the (k-1)-grams * C + the oldest word
    counts: np.ndarray  # int64


def flat_tokens(sentences: Sequence[Sequence[int]]) -> np.ndarray:
    """Encoded sentences end to end, as the counting reads them."""
    return EncodedSentences.from_lists(sentences).tokens


class _Runs:
    """Sorted (keys, counts) runs merged into one, spilling to disk past a memory budget."""

    def __init__(self, memory_bytes: int, folder: Path):
        self.memory_bytes = memory_bytes
        self.folder = folder
        self.in_memory: list[tuple[np.ndarray, np.ndarray]] = []
        self.spilled: list[Path] = []

    def add(self, keys: np.ndarray, counts: np.ndarray) -> None:
        self.in_memory.append((keys, counts))
        if sum(k.nbytes + c.nbytes for k, c in self.in_memory) > self.memory_bytes:
            keys, counts = _merge(self.in_memory)
            self.in_memory = []
            path = self.folder / f"run{len(self.spilled)}.npz"
            np.savez(path, keys=keys, counts=counts)
            self.spilled.append(path)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        runs = list(self.in_memory)
        for path in self.spilled:
            with np.load(path) as saved:
                runs.append((saved["keys"], saved["counts"]))
            path.unlink()
        return _merge(runs)


def _count_sorted(keys: np.ndarray, counts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys (sorted) and their summed counts (1 each if none are given)."""
    if keys.size == 0:
        return keys.astype(np.int64), np.zeros(0, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    if counts is None:
        summed = np.diff(np.append(starts, keys.size))
    else:
        summed = np.add.reduceat(counts[order], starts)
    return keys[starts], summed.astype(np.int64)


def _merge(runs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if not runs:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if len(runs) == 1:
        return runs[0]
    return _count_sorted(np.concatenate([k for k, _ in runs]), np.concatenate([c for _, c in runs]))


def _sentence_room(tokens: np.ndarray, start_id: int, chunk: int) -> np.ndarray:
    """Positions of every SENTENCE_START and the end, to measure how far a window may reach."""
    starts = [np.flatnonzero(tokens[at : at + chunk] == start_id) + at for at in range(0, tokens.size, chunk)]
    return np.concatenate([*starts, [tokens.size]]).astype(np.int64)


class _Pass:
    """The chunks of one order's pass: each position's key, where its window is inside a sentence."""

    def __init__(self, tokens: np.ndarray, boundaries: np.ndarray, vocab_size: int, k: int, ranks: np.ndarray | None):
        self.tokens, self.boundaries, self.vocab_size, self.k, self.ranks = tokens, boundaries, vocab_size, k, ranks

    def keys(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        """(mask of positions first..last-1 whose window counts, their keys)."""
        positions = np.arange(first, last, dtype=np.int64)
        room = self.boundaries[np.searchsorted(self.boundaries, positions, side="right")] - positions
        inside = room >= self.k
        words = self.tokens[first:last][inside].astype(np.int64)
        if self.k == 1:
            return inside, words
        suffix_ranks = self.ranks[first + 1 : last + 1]  # the window at p + 1 is p's suffix
        return inside, suffix_ranks[inside[: suffix_ranks.size]].astype(np.int64) * self.vocab_size + words


def count_ngrams(
    tokens: np.ndarray,
    order: int,
    vocab_size: int,
    start_id: int,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
    folder: str | Path | None = None,
) -> list[GramCounts]:
    """Raw counts of the distinct k-grams inside sentences, for k = 1 .. order (list index k - 1).

    ``folder`` takes the rank file and the spilled runs (a temporary folder if None).
    """
    if tokens.size and (int(tokens.max()) >= vocab_size or int(tokens.min()) < 0):
        raise ValueError(f"a word id is outside the vocabulary of {vocab_size}")
    if tokens.size and tokens[0] != start_id:
        raise ValueError("a sentence must begin with SENTENCE_START")
    with tempfile.TemporaryDirectory(prefix="ngram-counts-", dir=folder) as scratch:
        scratch = Path(scratch)
        boundaries = _sentence_room(tokens, start_id, chunk_tokens)
        levels: list[GramCounts] = []
        ranks = None
        for k in range(1, order + 1):
            started = time.monotonic()
            counting = _Pass(tokens, boundaries, vocab_size, k, ranks)
            runs = _Runs(memory_bytes, scratch)
            for first in range(0, tokens.size, chunk_tokens):
                _, keys = counting.keys(first, min(first + chunk_tokens, tokens.size))
                runs.add(*_count_sorted(keys))
            levels.append(GramCounts(*runs.result()))
            if k < order:
                ranks = _rank_positions(counting, levels[-1].keys, scratch / f"ranks{k}.int32", chunk_tokens)
            log.debug("order %d: %d distinct n-grams, %d runs spilled (%.1f s)", k, levels[-1].keys.size,
                      len(runs.spilled), time.monotonic() - started)
        del ranks
    return levels


def _rank_positions(counting: _Pass, distinct: np.ndarray, path: Path, chunk_tokens: int) -> np.ndarray:
    """Each position's k-gram rank among the distinct ones (-1 where the window leaves its sentence),
    in a memory-mapped file."""
    if distinct.size >= 2**31:
        raise ValueError(f"{distinct.size} distinct n-grams of one order do not fit an int32 rank")
    size = counting.tokens.size
    ranks = np.lib.format.open_memmap(path, mode="w+", dtype=np.int32, shape=(max(size, 1),))
    for first in range(0, size, chunk_tokens):
        last = min(first + chunk_tokens, size)
        inside, keys = counting.keys(first, last)
        found = np.full(last - first, -1, dtype=np.int32)
        unique, inverse = np.unique(keys, return_inverse=True)  # sorted queries search faster
        found[inside] = np.searchsorted(distinct, unique).astype(np.int32)[inverse]
        ranks[first:last] = found
    ranks.flush()
    return ranks

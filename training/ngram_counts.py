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
file of one int32 per token): each chunk of positions is sorted and counted, the counted chunks
are merged, and they are written to disk whenever they outgrow the memory budget (as KenLM's
lmplz sorts and merges); the runs are then merged block by block into the result, so besides one
chunk, the budget and one order's distinct keys (to rank the positions by) nothing is in memory.
The result, per order, is the sorted distinct keys with their raw counts and, for the fitting,
each n-gram's prefix (its first k - 1 words, as a rank among the (k-1)-grams) and last word, in
files read a chunk at a time (``training.chunked_array``) or, for a small corpus, in memory.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.chunked_array import ArrayWriter, ChunkedArray
from training.sentences import EncodedSentences

log = logging.getLogger(__name__)

DEFAULT_CHUNK_TOKENS = 1 << 22
DEFAULT_MEMORY_BYTES = 1 << 28
# the columns of a counted run, with their types
COLUMNS = (("keys", np.int64), ("counts", np.int64), ("prefixes", np.int32), ("last_words", np.int32))
ROW_BYTES = sum(np.dtype(dtype).itemsize for _, dtype in COLUMNS)

Run = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # the COLUMNS of a run in memory


@dataclass(frozen=True)
class GramCounts:
    """The distinct k-grams of a corpus: sorted chained keys, how often each occurs, and each one's
    prefix (rank of its first k - 1 words among the (k-1)-grams; 0 for unigrams) and last word."""

    keys: ChunkedArray  # int64, sorted: rank of the suffix among the (k-1)-grams * C + the oldest word
    counts: ChunkedArray  # int64
    prefixes: ChunkedArray  # int32
    last_words: ChunkedArray  # int32

    @property
    def size(self) -> int:
        return self.keys.size

    def delete(self) -> None:
        for column in (self.keys, self.counts, self.prefixes, self.last_words):
            column.delete()


def flat_tokens(sentences: Sequence[Sequence[int]]) -> np.ndarray:
    """Encoded sentences end to end, as the counting reads them."""
    return EncodedSentences.from_lists(sentences).tokens


def _count_sorted(keys: np.ndarray, counts: np.ndarray | None, payload: Sequence[np.ndarray]) -> Run:
    """Distinct keys (sorted), their summed counts (1 each if none are given) and the payload of
    each (the same for every copy of a key, so any copy's)."""
    if keys.size == 0:
        return (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), *(p[:0] for p in payload))
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    if counts is None:
        summed = np.diff(np.append(starts, keys.size))
    else:
        summed = np.add.reduceat(counts[order], starts)
    firsts = order[starts]
    return (keys[starts], summed.astype(np.int64), *(p[firsts] for p in payload))


def _merge(runs: list[Run]) -> Run:
    if len(runs) == 1:
        return runs[0]
    columns = [np.concatenate(parts) for parts in zip(*runs)]
    return _count_sorted(columns[0], columns[1], columns[2:])


class _Runs:
    """Counted runs merged into one, spilling to disk past a memory budget."""

    def __init__(self, memory_bytes: int, scratch: Path):
        self.memory_bytes = memory_bytes
        self.scratch = scratch
        self.in_memory: list[Run] = []
        self.spilled: list[list[ChunkedArray]] = []

    def add(self, run: Run) -> None:
        self.in_memory.append(run)
        if sum(column.nbytes for run in self.in_memory for column in run) > self.memory_bytes:
            merged = _merge(self.in_memory)
            self.in_memory = []
            stored = []
            for (name, dtype), column in zip(COLUMNS, merged):
                writer = ArrayWriter(dtype, self.scratch / f"run{len(self.spilled)}.{name}")
                writer.append(column)
                stored.append(writer.close())
            self.spilled.append(stored)

    def result(self, outputs: list[ArrayWriter]) -> None:
        """Merge every run into ``outputs`` (one writer per column), block by block."""
        runs = self.spilled + ([[ChunkedArray.in_memory(c) for c in _merge(self.in_memory)]] if self.in_memory else [])
        # a merge step holds a block of every run and about three times as much while it sorts them
        block = max(16, self.memory_bytes // (4 * ROW_BYTES * max(len(runs), 1)))
        _merge_stored(runs, outputs, block)
        for run in self.spilled:
            for column in run:
                column.delete()


def _merge_stored(runs: list[list[ChunkedArray]], outputs: list[ArrayWriter], block: int) -> None:
    """K-way merge of sorted runs of distinct keys: each step takes, from every run's block in
    memory, the keys up to the smallest last key among the blocks of runs not read to their end
    (every copy of those keys is then in memory: a run's keys rise strictly), and counts them."""
    cursors = [0] * len(runs)
    buffers: list[Run | None] = [None] * len(runs)
    while True:
        for i, run in enumerate(runs):
            if (buffers[i] is None or buffers[i][0].size == 0) and cursors[i] < run[0].size:
                last = min(cursors[i] + block, run[0].size)
                buffers[i] = tuple(column.read(cursors[i], last) for column in run)
                cursors[i] = last
        live = [i for i, b in enumerate(buffers) if b is not None and b[0].size]
        if not live:
            return
        unfinished = [buffers[i][0][-1] for i in live if cursors[i] < runs[i][0].size]
        taken = []
        for i in live:
            n = int(np.searchsorted(buffers[i][0], min(unfinished), side="right")) if unfinished else buffers[i][0].size
            taken.append(tuple(column[:n] for column in buffers[i]))
            buffers[i] = tuple(column[n:] for column in buffers[i])
        for writer, column in zip(outputs, _merge(taken)):
            writer.append(column)


class _Pass:
    """The chunks of one order's pass: each position's key, where its window is inside a sentence."""

    def __init__(self, tokens: np.ndarray, start_id: int, vocab_size: int, k: int, ranks: ChunkedArray | None):
        self.tokens, self.start_id, self.vocab_size, self.k, self.ranks = tokens, start_id, vocab_size, k, ranks

    def inside(self, first: int, last: int) -> np.ndarray:
        """Which positions first..last-1 start a window of k tokens inside their sentence: one that
        ends within the corpus with no SENTENCE_START after its first token."""
        size = self.tokens.size
        inside = np.ones(last - first, dtype=bool)
        inside[max(0, min(last, size - self.k + 1) - first) :] = False
        for j in range(1, self.k):
            following = self.tokens[first + j : min(last + j, size)]
            inside[: following.size] &= following != self.start_id
        return inside

    def keys(self, first: int, last: int, inside: np.ndarray, suffix_ranks: np.ndarray | None = None) -> np.ndarray:
        """The keys of the windows at the positions ``inside`` (``suffix_ranks``: ranks at first + 1
        .. last, if already read)."""
        words = self.tokens[first:last][inside].astype(np.int64)
        if self.k == 1:
            return words
        if suffix_ranks is None:
            suffix_ranks = self.ranks.read(first + 1, last + 1)  # the window at p + 1 is p's suffix
        return suffix_ranks[inside[: suffix_ranks.size]].astype(np.int64) * self.vocab_size + words

    def run(self, first: int, last: int) -> Run:
        """The chunk's windows counted: keys, counts, prefixes and last words."""
        inside = self.inside(first, last)
        if self.k == 1:
            keys = self.tokens[first:last][inside].astype(np.int64)
            prefixes = np.zeros(keys.size, dtype=np.int32)
        else:
            ranks = self.ranks.read(first, last + 1)
            keys = self.keys(first, last, inside, ranks[1:])
            prefixes = ranks[: last - first][inside]  # the window of k - 1 at p is p's prefix
        last_words = self.tokens[np.flatnonzero(inside) + first + self.k - 1].astype(np.int32)
        return _count_sorted(keys, None, (prefixes, last_words))


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

    With a ``folder``, the result is written there (``GramCounts.delete`` removes it) and the
    rank files and spilled runs go to a scratch folder inside it; without one, the result is in
    memory and the scratch folder a temporary one.
    """
    if tokens.size and (int(tokens.max()) >= vocab_size or int(tokens.min()) < 0):
        raise ValueError(f"a word id is outside the vocabulary of {vocab_size}")
    if tokens.size and tokens[0] != start_id:
        raise ValueError("a sentence must begin with SENTENCE_START")
    if tokens.size >= 2**31:
        raise ValueError(f"{tokens.size} tokens do not fit the int32 ranks of the counting")
    scratch = Path(tempfile.mkdtemp(prefix="ngram-counts-", dir=folder))
    try:
        levels: list[GramCounts] = []
        ranks = None
        for k in range(1, order + 1):
            started = time.monotonic()
            counting = _Pass(tokens, start_id, vocab_size, k, ranks)
            runs = _Runs(memory_bytes, scratch)
            for first in range(0, tokens.size, chunk_tokens):
                runs.add(counting.run(first, min(first + chunk_tokens, tokens.size)))
            outputs = [ArrayWriter(dtype, Path(folder) / f"order{k}.{name}" if folder is not None else None)
                       for name, dtype in COLUMNS]
            runs.result(outputs)
            levels.append(GramCounts(*(writer.close() for writer in outputs)))
            below = ranks
            ranks = _rank_positions(counting, levels[-1].keys, scratch / f"ranks{k}", chunk_tokens) if k < order else None
            if below is not None:  # the ranks one order down are read by this order's pass only
                below.delete()
            log.debug("order %d: %d distinct n-grams, %d runs spilled (%.1f s)", k, levels[-1].size,
                      len(runs.spilled), time.monotonic() - started)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return levels


def _rank_positions(counting: _Pass, distinct: ChunkedArray, path: Path, chunk_tokens: int) -> ChunkedArray:
    """Each position's k-gram rank among the distinct ones (-1 where the window leaves its sentence),
    in a file."""
    if distinct.size >= 2**31:
        raise ValueError(f"{distinct.size} distinct n-grams of one order do not fit an int32 rank")
    keys = distinct.load()
    writer = ArrayWriter(np.int32, path)
    size = counting.tokens.size
    for first in range(0, size, chunk_tokens):
        last = min(first + chunk_tokens, size)
        inside = counting.inside(first, last)
        found = np.full(last - first, -1, dtype=np.int32)
        unique, inverse = np.unique(counting.keys(first, last, inside), return_inverse=True)  # sorted queries search faster
        found[inside] = np.searchsorted(keys, unique).astype(np.int32)[inverse]
        writer.append(found)
    return writer.close()

"""The blocks of consecutive word ids a mixture draw chooses among, and each row's chosen block
laid out for the choice of a word in it.

A draw (``models.mixture_draws``) is an inverse-CDF draw over the words in vocabulary order: the
uniform number falls in one block by the blocks' masses, then on one word of that block. The
full softmax's blocks are DRAW_BLOCK words each; the class softmax's are its classes, whose RNN
masses are its class probabilities. ``DrawBlocks`` describes either by where each block starts.

The chosen blocks' words are scored into cells (``ChosenBlocks``): row r's block takes whole
chunks of DRAW_BLOCK cells, its words first, zeros after. Blocks of at most DRAW_BLOCK words
(every full-softmax block) are one chunk per row, a B x DRAW_BLOCK matrix. A wider class (up to
some 2,300 words) would make a B x widest matrix for every row if padded to its width; in chunks
its row alone pays for its width, and the word is chosen in two steps (the chunk by the chunks'
sums, then the word in the chunk), each over small matrices. Every number of a row comes from
that row's own cells, whatever the other rows chose.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from models.draws import BELOW_ONE, DRAW_BLOCK
from models.ngram_table import spans


@dataclass(frozen=True)
class ChosenBlocks:
    """Each row's chosen block (``blocks``: its words ``start`` .. ``start + width - 1``) laid out in
    cells: ``shape`` is B x DRAW_BLOCK when every block is one chunk (``chunks`` None), else flat,
    row r's cells then the ``chunks[r]`` chunks of DRAW_BLOCK cells from chunk ``first_chunk[r]``.
    Row r's word w is cell ``shift[r] + w``; ``words`` is each cell's word id (within the
    vocabulary: past a block's end a neighbour's, or the last word), ``outside`` marks the cells
    past a block's end (None: there are none)."""

    blocks: np.ndarray
    start: np.ndarray
    width: np.ndarray
    shift: np.ndarray
    words: np.ndarray
    outside: np.ndarray | None
    chunks: np.ndarray | None = None
    first_chunk: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.words.shape

    def cells(self, rows: np.ndarray, words: np.ndarray) -> np.ndarray:
        """The flat cell of each (row, word) pair, each word in its row's block."""
        return self.shift.take(rows) + words

    def per_cell(self, per_row: np.ndarray) -> np.ndarray:
        """A number per row, spread over the row's cells (broadcasting against ``shape``)."""
        return per_row[:, None] if self.chunks is None else per_row.repeat(self.chunks * DRAW_BLOCK)

    def word_cells(self) -> np.ndarray:
        """The cells of the blocks' words (not the padding after them), row after row, in word order."""
        return spans(self.shift + self.start, self.width)

    def add_to_words(self, values: np.ndarray, per_word: np.ndarray) -> None:
        """Add to ``values`` (laid out in cells) a number per word of the blocks, given row after
        row in word order: the cells inside the blocks, in order (no ``spans`` to build)."""
        if self.outside is None:
            values += per_word.reshape(values.shape)
        else:
            values[~self.outside] += per_word

    def pick(self, values: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each row, the cell where ``offsets[row]`` falls in the running sum of its cells'
        ``values`` (>= 0, 0 in the padding; an offset outside [0, total) is moved inside), and the
        running sum's total over the chunk chosen (<= 0: the row had nothing to choose)."""
        rows = self.start.size
        if self.chunks is None:
            inner = values.cumsum(axis=1)
            base = every_row(rows) * DRAW_BLOCK
        else:
            # each chunk's running sum; its own sum is where that ends, so a row of one chunk is
            # clamped as in the one-chunk layout, whatever the other rows chose
            running = values.reshape(-1, DRAW_BLOCK).cumsum(axis=1)
            widest = int(self.chunks.max())
            table = np.zeros((rows, widest + 1))  # 0, then each row's chunks' sums (0 past its last)
            table.ravel()[spans(every_row(rows) * (widest + 1) + 1, self.chunks)] = running[:, -1]
            cdf = table.cumsum(axis=1)  # 0, then the running sum of the row's chunks
            offsets = np.minimum(np.maximum(offsets, 0.0), cdf[:, -1] * BELOW_ONE)
            chunk = first_above(cdf[:, 1:], offsets, self.chunks - 1)
            offsets = offsets - cdf[every_row(rows), chunk]  # less the chunks before (0.0 before the first)
            chunk += self.first_chunk
            inner = running[chunk]
            base = chunk * DRAW_BLOCK
        # kept below the chunk's total, so a zero value at its end (a banned word, padding) is never chosen
        offsets = np.minimum(np.maximum(offsets, 0.0), inner[:, -1] * BELOW_ONE)
        return base + first_above(inner, offsets), inner[:, -1]


@dataclass(frozen=True)
class DrawBlocks:
    """Block k holds the words ``starts[k]`` up to (not including) ``starts[k + 1]``; ``even``:
    every block is DRAW_BLOCK words but the last (a word's block is then its id // DRAW_BLOCK)."""

    starts: np.ndarray
    even: bool
    block_of_word: np.ndarray
    widths: np.ndarray  # each block's count of words
    chunks: np.ndarray  # each block's count of chunks of DRAW_BLOCK cells

    @classmethod
    def evenly(cls, size: int) -> "DrawBlocks":
        """Blocks of DRAW_BLOCK words over a vocabulary of ``size`` words (the full softmax's)."""
        return cls.ranges(np.append(np.arange(0, size, DRAW_BLOCK), size))

    @classmethod
    def ranges(cls, starts: np.ndarray) -> "DrawBlocks":
        """Blocks of any widths (the class softmax's classes, ``WordClasses.starts``)."""
        starts = np.asarray(starts, dtype=np.int64)
        widths = np.diff(starts)
        even = bool((widths[:-1] == DRAW_BLOCK).all() and 0 < widths[-1] <= DRAW_BLOCK)
        return cls(starts, even, np.repeat(np.arange(widths.size), widths), widths, -(-widths // DRAW_BLOCK))

    @property
    def count(self) -> int:
        return self.starts.size - 1

    @property
    def size(self) -> int:
        return int(self.starts[-1])

    def of(self, words: np.ndarray) -> np.ndarray:
        """The block of each word."""
        return words // DRAW_BLOCK if self.even else self.block_of_word.take(words)

    def sums(self, weights: np.ndarray) -> np.ndarray:
        """The sum of ``weights`` (one per word, along the last axis) over each block."""
        return np.add.reduceat(weights, self.starts[:-1], axis=-1)

    def chosen(self, blocks: np.ndarray) -> ChosenBlocks:
        """Row r's block ``blocks[r]`` laid out in cells (``ChosenBlocks``)."""
        rows, size = blocks.size, self.size
        first = every_row(rows) * DRAW_BLOCK
        if self.even:
            start = blocks * DRAW_BLOCK
            words = start[:, None] + _offsets()
            outside = None
            if size % DRAW_BLOCK and (blocks == self.count - 1).any():  # the last block, past the last word
                outside = words >= size
                words = np.minimum(words, size - 1)
            return ChosenBlocks(blocks, start, np.minimum(size - start, DRAW_BLOCK), first - start, words, outside)
        start, width, chunks = self.starts.take(blocks), self.widths.take(blocks), self.chunks.take(blocks)
        if rows and chunks.max() == 1:
            words = start[:, None] + _offsets()
            outside = _offsets() >= width[:, None]
            return ChosenBlocks(blocks, start, width, first - start, np.minimum(words, size - 1), outside)
        first_chunk = chunks.cumsum() - chunks
        shift = first_chunk * DRAW_BLOCK - start
        cells = chunks * DRAW_BLOCK
        words = np.arange(int(cells.sum())) - shift.repeat(cells)
        outside = words >= (start + width).repeat(cells)
        return ChosenBlocks(blocks, start, width, shift, np.minimum(words, size - 1), outside, chunks, first_chunk)


def first_above(running: np.ndarray, offsets: np.ndarray, last: np.ndarray | None = None) -> np.ndarray:
    """For each row of ``running`` (a running sum of numbers >= 0, so never decreasing), the
    first column whose sum passes ``offsets[row]``, or its column ``last[row]`` (None: the last
    column) if none before does: how many of the row's sums are <= the offset, at most ``last``."""
    above = running > offsets[:, None]
    if last is None:
        above[:, -1] = True
    else:
        above[every_row(above.shape[0]), last] = True
    return above.argmax(axis=1)


@lru_cache(maxsize=1)
def _offsets() -> np.ndarray:
    offsets = np.arange(DRAW_BLOCK)
    offsets.flags.writeable = False
    return offsets


@lru_cache(maxsize=4)
def every_row(rows: int) -> np.ndarray:
    """0 .. rows - 1, made once per row count (read only)."""
    every = np.arange(rows)
    every.flags.writeable = False
    return every

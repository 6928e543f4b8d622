"""Draws from the RNN interpolated with its n-gram model, for a batch of sequences, without
building the mixture's distribution word by word.

A draw is an inverse-CDF draw over the words in vocabulary order, as ``draw_index`` does it: the
uniform number times the total mass falls in one block of consecutive words, then on one word of
it (``models.draw_blocks``; the blocks are DRAW_BLOCK words for the full softmax, the classes for
the class softmax). The mixture's mass of a block is the sum of its parts, each cheap to get per
block:

    w * P_rnn(block)  +  (1 - w) * (factor * unigram block sums + sparse counts' block sums)

times (1 - c), plus c times the shares of the cache's few words in the recent text (c = 0 without
a cache or while its window is empty). The RNN's part (``models.rnn_draw_parts``) is the full
softmax's block sums of one pass of exponentials over its float32 logits divided by their total,
or the class softmax's class probabilities; the unigram level's block sums are computed once, and
the n-gram model's seen contexts and the cache's words add a few sparse entries
(``NgramTable.seen_batch``, ``NgramMixture.cache_shares``). Only the chosen block's words are then
mixed one by one. Banned words (never generated) are taken out of their blocks' masses first;
the chosen word's log-probability is its mixture probability before that, as the dense draw
reports it.

The numbers are the dense draw's (``reference_draw``) up to rounding: the same word unless the
uniform number falls within about 1e-7 of a boundary between two words. Below the RNN part's
``dense_below`` rows the dense draw itself runs, row by row (for the full softmax FEW_ROWS,
``models.row_stable``: a few rows do not pay for the batched draw's fixed cost); else a single row
is drawn alone with the n-gram distribution read word by word, as the dense draw reads it
(``MixtureDrawer._one_row``: from two rows on the batched draw costs no more a row). Every
row's numbers come from that row alone (row-stable products, per-row reductions), so a sequence
draws the same words whatever else is in the batch, to rounding where it moves between a row
drawn alone and the batched draw.
"""
from __future__ import annotations

import math
from functools import lru_cache
from itertools import chain
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from models.draw_blocks import ChosenBlocks, DrawBlocks, every_row, first_above
from models.draws import index_at
from models.mixture import NgramMixture
from models.ngram_table import ContextLevel, FlatLevels, NewestFirst, spans
from models.recent_text import CacheWindows
from models.rnn_draw_parts import rnn_part
from models.softmax import OutputLayer


@dataclass(frozen=True)
class _BlockedContexts:
    """The contexts followed by at least as many words as there are blocks (so this costs no more
    memory than their entries), of every length, summed by the draw's blocks: a draw
    reads one row of ``counts`` (the block sums, then the counts of a few special words) instead
    of every entry, and finds the entries of one block between two ``starts`` (positions in
    ``FlatLevels``' entries).

    The rows are those of the lengths that have such contexts (``columns``, positions among
    ``SeenContexts``' columns, longest first, a slice where they follow one another), stacked in
    that order; ``row_of`` gives each context of ``FlatLevels`` (``SeenContexts.flat``) its row
    here. The last row (``none``) is all zeros with no entries: what a context that is not here
    reads, so that all rows are read at once."""

    columns: slice | list[int]
    keys: np.ndarray  # the contexts' indices in ``FlatLevels``, sorted
    counts: np.ndarray  # (n + 1, blocks + specials): discounted counts per block, then of each special word
    starts: np.ndarray  # (n + 1, blocks + 1): where each block's entries begin in ``FlatLevels``' entries
    row_of: np.ndarray  # (contexts of ``FlatLevels``,): each one's row, ``none`` where it is not here

    @property
    def none(self) -> int:
        return self.keys.size

    @classmethod
    def of(cls, levels: Sequence[ContextLevel], flat: FlatLevels, blocks: DrawBlocks,
           specials: np.ndarray) -> "_BlockedContexts":
        """From the levels of ``SeenContexts``' columns (longest first), laid out in ``flat``."""
        columns, keys, counts, starts = [], [], [], []
        for column, level in enumerate(levels):
            contexts = np.flatnonzero(np.diff(level.offsets) >= blocks.count)
            if contexts.size:
                columns.append(column)
                keys.append(flat.base[column] + contexts)
                for context in contexts.tolist():
                    row_counts, row_starts = _block_counts(level, context, blocks, specials)
                    counts.append(row_counts)
                    starts.append(row_starts + flat.entry_base[column])
        counts.append(np.zeros(blocks.count + specials.size))
        starts.append(np.zeros(blocks.count + 1, dtype=np.int64))
        keys = np.concatenate(keys) if keys else np.zeros(0, np.int64)
        row_of = np.full(flat.offsets.size - 1, keys.size, dtype=_int_type(keys.size))
        row_of[keys] = np.arange(keys.size)
        if not columns or columns == list(range(columns[0], columns[-1] + 1)):  # a view, not a copy, to read
            columns = slice(columns[0], columns[-1] + 1) if columns else slice(0, 0)
        return cls(columns, keys, np.stack(counts), np.stack(starts), row_of)

    def rows_of(self, flat: np.ndarray) -> np.ndarray:
        """The row of each context of ``flat`` (``SeenContexts.flat``: columns x B) in ``columns``,
        or ``none`` (blocked columns x B)."""
        return self.row_of.take(flat[self.columns])


def _block_counts(level: ContextLevel, context: int, blocks: DrawBlocks,
                  specials: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One context's discounted counts per block then of each special word, and where each
    block's entries begin."""
    first, last = int(level.offsets[context]), int(level.offsets[context + 1])
    words, discounted = level.words[first:last], level.discounted[first:last]
    sums = np.bincount(blocks.of(words), weights=discounted, minlength=blocks.count)
    at = np.minimum(np.searchsorted(words, specials), words.size - 1)
    special_counts = np.where(words[at] == specials, discounted[at], 0.0)
    return np.concatenate([sums, special_counts]), first + np.searchsorted(words, blocks.starts)


@dataclass(frozen=True)
class BannedWords:
    """Each row's banned words as two flat arrays, row by row and in each row's order: what a
    batched draw reads, built by a decoder with a few vectorised operations a step instead of
    from a list per row."""

    rows: np.ndarray  # int64, ascending
    words: np.ndarray  # int64

    @classmethod
    def of(cls, banned: Sequence[Sequence[int]]) -> "BannedWords":
        """From a list of banned words per row."""
        rows = np.repeat(np.arange(len(banned)), np.fromiter(map(len, banned), np.int64, len(banned)))
        return cls(rows, np.fromiter(chain.from_iterable(banned), dtype=np.int64, count=rows.size))

    def row(self, row: int) -> list[int]:
        """Row ``row``'s banned words."""
        return self.words[self.rows == row].tolist()


@dataclass
class _NgramParts:
    """One step's n-gram distributions, row by row: ``factor`` times the unigram level, plus the
    few counts of small contexts (``rows``, ``words`` with their ``blocks``, ``values``: already
    scaled), plus the blocked contexts' counts: their rows in ``_BlockedContexts`` (``big``, its
    columns x B; ``none`` where the row's context is small or unseen) and their ``scale``.
    ``sums``: each row's n-gram mass per block, then its probability of each special word given
    a column of its own (``MixtureDrawer._columns``; B x (blocks + columns))."""

    factor: np.ndarray
    rows: np.ndarray
    words: np.ndarray
    blocks: np.ndarray
    values: np.ndarray
    big: np.ndarray
    scale: np.ndarray
    sums: np.ndarray
    cache: "_CacheParts | None" = None


@dataclass(frozen=True)
class _CacheParts:
    """The cache's part of each row: the mixture's other parts are scaled by ``keep`` (1 - its
    weight), its words' weighted shares added as sparse entries (``rows``, ``words`` with their
    ``blocks``, ``values``)."""

    keep: np.ndarray
    rows: np.ndarray
    words: np.ndarray
    blocks: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, mixture: NgramMixture, recents: Sequence[Sequence[int]] | CacheWindows | None,
           blocks: DrawBlocks) -> "_CacheParts | None":
        """From each row's text so far (a list per row, or the decoder's ``CacheWindows``); None
        where the cache adds nothing (no cache, or every window empty: its weight is then 0)."""
        if recents is None or not mixture.cache_weight:
            return None
        windows = recents if isinstance(recents, CacheWindows) else CacheWindows.of(recents, mixture.cache_size)
        rows, words, shares = windows.shares()
        if not rows.size:
            return None
        keep = np.ones(windows.tokens.shape[0])  # none while a window is empty (a row without words)
        keep[rows] = 1.0 - mixture.cache_weight
        return cls(keep, rows, words, blocks.of(words), mixture.cache_weight * shares)

    def add_to(self, values: np.ndarray, keep: np.ndarray, cells: np.ndarray, here: np.ndarray | None = None) -> None:
        """Scale ``values`` by ``keep`` (``self.keep`` spread over its cells) and add the entries
        ``here`` (None: all) at their flat ``cells``."""
        values *= keep
        values += _totals(cells, self.values if here is None else self.values[here], values.shape)


class MixtureDrawer:
    """Draws from ``mixture`` over the output layer ``output`` (a frozen one: see
    ``RecurrentLM.for_generation``), many rows at once."""

    def __init__(self, output: OutputLayer, mixture: NgramMixture, specials: Sequence[int] = ()):
        """``specials``: the words most draws ban (the vocabulary's special tokens), whose
        probabilities are then read from a few numbers kept per context."""
        self.output = output
        self.mixture = mixture
        self.table = mixture.ngram
        self.rnn_weight = mixture.rnn_weight
        self._rnn = rnn_part(output, self.rnn_weight, specials)
        self._blocks = self._rnn.blocks
        self._count = self._blocks.count
        self._size = output.vocab_size
        self._unigram = self.table.unigram_level()
        self._specials = self._rnn.specials
        self._special_index = _index_of(self._specials, self._size)
        # the specials whose probabilities follow the blocks' masses as columns of their own (none
        # where each is alone in its block: its block's mass is its probability)
        self._columns = self._specials[:0] if self._rnn.alone else self._specials
        self._column_index = _index_of(self._columns, self._size)
        # the unigram level's mass per block, then its probability of each column's special word
        self._unigram_sums = np.concatenate([self._blocks.sums(self._unigram), self._unigram[self._columns]])
        # the levels of ``SeenContexts``' columns, longest context first; the empty context (length
        # 0) is the unigram level, read whole
        self._flat = self.table.flat
        levels = [self.table.levels[k] for k in range(self.table.order - 1, 0, -1)]
        self._blocked = _BlockedContexts.of(levels, self._flat, self._blocks, self._columns)
        # how many entries a draw reads one by one of each context of ``FlatLevels``: all of a
        # context followed by fewer words than there are blocks, none of the others (blocked)
        counts = np.diff(self._flat.offsets)
        self._entry_counts = np.where(counts < self._count, counts, 0).astype(_int_type(self._count))

    def draw(
        self, hidden: np.ndarray, histories: Sequence[Sequence[int]] | NewestFirst, uniforms: np.ndarray,
        banned: Sequence[Sequence[int]] | BannedWords, recents: Sequence[Sequence[int]] | CacheWindows | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One word per row of ``hidden`` (B x H) with the uniform number ``uniforms[row]`` (its
        generator's ``random()``), never one of that row's ``banned`` words (a list per row, or
        ``BannedWords``): the word ids and each word's log-probability under the mixture.
        ``histories``: each row's words so far (or their newest words as ``NewestFirst``).
        ``recents``: each row's text so far, which the mixture's cache reads (or the windows of
        ``CacheWindows``; None: no cache)."""
        rows = hidden.shape[0]
        if rows < self._rnn.dense_below or rows == 1:
            lists = [banned.row(row) for row in range(rows)] if isinstance(banned, BannedWords) else banned
            one = self._reference if rows < self._rnn.dense_below else self._one_row
            drawn = [one(hidden, histories, uniforms, lists[row], recents, row) for row in range(rows)]
            return np.array([word for word, _ in drawn], dtype=np.int64), np.array([lp for _, lp in drawn])
        # each row's mass per block, then its probability of each column's special word, before the bans
        step, rnn = self._rnn.masses(hidden)  # ``step`` may hold ``rnn``: left as it is
        parts = self._ngram_parts(histories)
        parts.cache = _CacheParts.of(self.mixture, recents, self._blocks)
        mixed = parts.sums
        mixed *= 1.0 - self.rnn_weight
        mixed += rnn
        cache = parts.cache
        if cache is not None:
            cells = cache.rows * mixed.shape[1] + cache.blocks
            if self._columns.size:  # the specials' own columns
                index = self._column_index.take(cache.words)
                hit = (index >= 0).nonzero()[0]
                cache.add_to(mixed, cache.keep[:, None],
                             np.concatenate([cells, cache.rows[hit] * mixed.shape[1] + self._count + index[hit]]),
                             np.concatenate([every_row(cache.words.size), hit]))
            else:
                cache.add_to(mixed, cache.keep[:, None], cells)
        masses = mixed[:, : self._count]

        if not isinstance(banned, BannedWords):
            banned = BannedWords.of(banned)
        banned_rows, banned_words = banned.rows, banned.words
        banned_blocks = self._blocks.of(banned_words)
        special = self._special_index.take(banned_words)
        if special.min(initial=0) >= 0:
            self._take_out_specials(masses, (banned_rows, banned_blocks),
                                    lambda: mixed[banned_rows, self._count + special])
        else:
            for block in sorted(set(banned_blocks.tolist())):
                here = banned_blocks == block
                chosen = self._blocks.chosen(np.full(rows, block))
                values = self._chosen_values(step, parts, chosen).ravel()
                taken = values[chosen.cells(banned_rows[here], banned_words[here])]
                np.subtract.at(masses[:, block], banned_rows[here], taken)
            np.maximum(masses, 0.0, out=masses)

        running = np.zeros((rows, self._count + 1))  # 0, then the running sum of the blocks' masses
        cdf = masses.cumsum(axis=1, out=running[:, 1:])
        targets = uniforms * cdf[:, -1]
        blocks = first_above(cdf, targets)
        chosen = self._blocks.chosen(blocks)
        mixed = self._chosen_values(step, parts, chosen)  # each word's probability, before the bans
        values = mixed
        in_chosen = (banned_blocks == blocks.take(banned_rows)).nonzero()[0]
        if in_chosen.size:  # not the usual case: a banned special alone in its block has mass 0, so is not chosen
            values = mixed.copy()
            values.ravel()[chosen.cells(banned_rows.take(in_chosen), banned_words.take(in_chosen))] = 0.0
        cells, totals = chosen.pick(values, targets - running[every_row(rows), blocks])
        words = cells - chosen.shift
        picked = mixed.ravel().take(cells)
        logprobs = np.log(picked, out=np.full(rows, -np.inf), where=picked > 0)  # 0: a fallback row, below
        for row in (totals <= 0).nonzero()[0].tolist():  # only by rounding: the block's mass was all banned
            words[row], logprobs[row] = self._reference(hidden, histories, uniforms, banned.row(row), recents, row)
        return words, logprobs

    def _reference(self, hidden: np.ndarray, histories: Sequence[Sequence[int]] | NewestFirst, uniforms: np.ndarray,
                   banned: Sequence[int], recents: Sequence[Sequence[int]] | CacheWindows | None,
                   row: int) -> tuple[int, float]:
        """Row ``row``'s draw by ``reference_draw`` (``banned``: that row's banned words)."""
        history = histories.history(row) if isinstance(histories, NewestFirst) else histories[row]
        return reference_draw(self.output, self.mixture, hidden[row : row + 1], history, float(uniforms[row]),
                              banned, recents[row] if recents is not None else ())

    def _one_row(self, hidden: np.ndarray, histories: Sequence[Sequence[int]] | NewestFirst, uniforms: np.ndarray,
                 banned: Sequence[int], recents: Sequence[Sequence[int]] | CacheWindows | None,
                 row: int) -> tuple[int, float]:
        """Row ``row``'s draw as ``draw`` makes it, for one row at a time: the n-gram model's and the
        cache's parts word by word (``NgramTable.next_word_probs``, as the dense draw reads them),
        the RNN's by blocks; a few dozen NumPy calls instead of the batched draw's some hundred."""
        banned = np.asarray(banned, dtype=np.int64)
        special = self._special_index.take(banned)
        if special.min(initial=0) < 0:  # a banned word whose RNN probability is not kept apart
            return self._reference(hidden, histories, uniforms, banned.tolist(), recents, row)
        history = histories.history(row) if isinstance(histories, NewestFirst) else histories[row]
        step, rnn = self._rnn.masses(hidden[row : row + 1])
        rest = self.table.next_word_probs(history)  # every word's n-gram probability, then the cache's
        rest *= 1.0 - self.rnn_weight
        weight, words, shares = self.mixture.cache_shares(recents[row] if recents is not None else ())
        if weight:
            rnn = rnn * (1.0 - weight)  # not in place: ``step`` may hold it
            rest *= 1.0 - weight
            rest[words] += weight * shares
        masses = rnn[0, : self._count] + self._blocks.sums(rest)
        banned_blocks = self._blocks.of(banned)
        self._take_out_specials(masses, banned_blocks, lambda: rnn[0, self._count + special] + rest.take(banned))
        cdf = masses.cumsum()
        target = float(uniforms[row]) * cdf[-1]
        block = min(int(np.searchsorted(cdf, target, side="right")), self._count - 1)
        chosen = self._blocks.chosen(np.array([block]))
        mixed = np.zeros(chosen.shape)  # each word's probability, before the bans
        self._rnn.add_values(step, chosen, mixed)
        if weight:
            mixed *= 1.0 - weight
        mixed += rest.take(chosen.words)
        if chosen.outside is not None:
            mixed[chosen.outside] = 0.0
        values = mixed.copy()
        in_chosen = banned[banned_blocks == block]
        values.ravel()[chosen.cells(np.zeros(in_chosen.size, dtype=np.int64), in_chosen)] = 0.0
        cells, totals = chosen.pick(values, np.array([target - (cdf[block - 1] if block else 0.0)]))
        if totals[0] <= 0:  # only by rounding: the block's mass was all banned
            return self._reference(hidden, histories, uniforms, banned.tolist(), recents, row)
        return int(cells[0] - chosen.shift[0]), math.log(mixed.ravel()[cells[0]])

    def _take_out_specials(self, masses: np.ndarray, cells: np.ndarray | tuple[np.ndarray, np.ndarray],
                           taken: Callable[[], np.ndarray]) -> None:
        """Take banned special words out of their blocks' ``masses`` at ``cells``, their
        probabilities ``taken()``. A special alone in its block takes all of its block's mass:
        its probability is that mass, summed in the same order, so the difference is exactly 0
        and is written as such."""
        if self._rnn.alone:
            masses[cells] = 0.0
        else:
            np.subtract.at(masses, cells, taken())
            np.maximum(masses, 0.0, out=masses)

    def _ngram_parts(self, histories: Sequence[Sequence[int]] | NewestFirst) -> _NgramParts:
        """Each row's n-gram distribution by parts (``NgramTable.seen_batch``), the blocked
        contexts' counts to be read by blocks, and its sums per block and of the special words."""
        seen = self.table.seen_batch(histories)
        rows = seen.factor.size
        flat, scale = seen.flat, seen.scale.T  # columns x B; an unseen context reads 0 entries
        rows_of, words, values = _entries(self._flat, self._flat.offsets.take(flat), self._entry_counts.take(flat),
                                          scale)
        blocks = self._blocks.of(words)
        width = self._count + self._columns.size
        sums = seen.factor[:, None] * self._unigram_sums
        cells = rows_of * width + blocks
        if self._columns.size:
            column = self._column_index.take(words)
            hit = (column >= 0).nonzero()[0]
            sums += _totals(np.concatenate([cells, rows_of[hit] * width + self._count + column[hit]]),
                            np.concatenate([values, values[hit]]), (rows, width))
        else:
            sums += _totals(cells, values, (rows, width))
        blocked = self._blocked
        big, scale = blocked.rows_of(flat), scale[blocked.columns]
        if big.shape[0]:
            sums += (blocked.counts[big] * scale[:, :, None]).sum(axis=0)
        return _NgramParts(seen.factor, rows_of, words, blocks, values, big, scale, sums)

    def _chosen_values(self, step: object, parts: _NgramParts, chosen: ChosenBlocks) -> np.ndarray:
        """The mixture probability of each word of each row's chosen block, laid out as ``chosen``
        says (0 past a block's end)."""
        ngram = chosen.per_cell(parts.factor) * self._unigram.take(chosen.words)
        # the small contexts' entries in each row's block, then the blocked contexts' there
        here = (parts.blocks == chosen.blocks.take(parts.rows)).nonzero()[0]
        starts = self._blocked.starts
        first = starts[parts.big, chosen.blocks]
        big_rows, words, values = _entries(self._flat, first, starts[parts.big, chosen.blocks + 1] - first, parts.scale)
        cells = chosen.cells(np.concatenate([parts.rows.take(here), big_rows]),
                             np.concatenate([parts.words.take(here), words]))
        ngram += _totals(cells, np.concatenate([parts.values.take(here), values]), ngram.shape)
        ngram *= 1.0 - self.rnn_weight
        values = ngram
        self._rnn.add_values(step, chosen, values)  # n-gram + RNN: the same sums as RNN + n-gram
        cache = parts.cache
        if cache is not None:
            here = cache.blocks == chosen.blocks.take(cache.rows)
            cache.add_to(values, chosen.per_cell(cache.keep), chosen.cells(cache.rows[here], cache.words[here]), here)
        if chosen.outside is not None:
            values[chosen.outside] = 0.0
        return values


def _entries(flat: FlatLevels, first: np.ndarray, counts: np.ndarray,
             scale: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``counts[column, row]`` entries of ``flat`` from ``first[column, row]`` on (all columns
    x B), column by column, rows in order within one: their rows, words and discounted counts
    times ``scale[column, row]``."""
    counts = counts.ravel()
    positions = spans(first.ravel(), counts)
    rows = _rows_of_cells(*first.shape).repeat(counts)
    values = flat.discounted.take(positions)
    values *= scale.ravel().repeat(counts)
    return rows, flat.words.take(positions), values


def _int_type(most: int) -> type:
    """The smallest signed integer type of at least 16 bits that holds 0 .. ``most``: per-context
    tables kept for the whole table's contexts."""
    return next(kind for kind in (np.int16, np.int32, np.int64) if most <= np.iinfo(kind).max)


def _index_of(words: np.ndarray, size: int) -> np.ndarray:
    """The position of each word id (< ``size``) in ``words``, -1 for the others."""
    index = np.full(size, -1, dtype=np.int64)
    index[words] = np.arange(words.size)
    return index


@lru_cache(maxsize=4)
def _rows_of_cells(columns: int, rows: int) -> np.ndarray:
    """The row of each cell of a columns x rows array, flattened (read only)."""
    cells = np.tile(np.arange(rows), columns)
    cells.flags.writeable = False
    return cells


def _totals(cells: np.ndarray, values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A float64 array of ``shape`` of the ``values`` summed by flat cell index (in the order
    given, so a row's sums do not depend on the other rows)."""
    return np.bincount(cells, weights=values, minlength=math.prod(shape)).astype(np.float64, copy=False).reshape(shape)


def reference_draw(
    output: OutputLayer, mixture: NgramMixture, hidden: np.ndarray, history: Sequence[int], uniform: float,
    banned: Sequence[int], recent: Sequence[int] = (),
) -> tuple[int, float]:
    """The dense draw, written for clarity: every word's mixture probability (``recent``: the text
    so far, for the cache), the banned ones zeroed, an inverse-CDF draw with ``uniform``; the word
    and its log-probability."""
    probs = mixture.next_word_probs(output.probabilities(hidden)[0], history, recent)
    chosen_from = probs.copy()
    chosen_from[list(banned)] = 0.0
    word = index_at(chosen_from, uniform)
    return word, math.log(probs[word])

"""The unigram cache's window: which tokens of the text so far it counts, and each word's share.

The text so far runs across sentences (a scored text's, or one generation request's, prompt
included). Its tokens are every token of its sentences after SENTENCE_START: the words
(UNKNOWN_TOKEN for an unknown one) and SENTENCE_END where a sentence ended; SENTENCE_START is
never counted (it is not text, and it is never predicted). The window is the last ``size`` of
them; a word's cache probability is its share of the window (none while the window is empty).
Training, scoring and both samplers take the window from here.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.vocabulary import Vocabulary


def text_tokens(tokens: Sequence[int]) -> list[int]:
    """The tokens of ``tokens`` (sentences as encoded, or words as generated) the window counts."""
    return [int(t) for t in tokens if t != Vocabulary.start_id]


def extended(recent: Sequence[int], tokens: Sequence[int], size: int) -> list[int]:
    """The window after ``recent`` (the window so far) is followed by ``tokens``."""
    if size <= 0:
        return []
    return [*recent, *text_tokens(tokens)][-size:]


def window_shares(recent: Sequence[int], size: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct words of the window of ``recent`` (the text so far) and each one's share of it."""
    window = np.asarray(text_tokens(recent)[-size:] if size > 0 else [], dtype=np.int64)
    if not window.size:
        return np.zeros(0, np.int64), np.zeros(0)
    words, counts = np.unique(window, return_counts=True)
    return words, counts / window.size


@dataclass(frozen=True)
class CacheWindows:
    """Many rows' windows as one int64 matrix (rows x size; -1 where a window is not full yet, a
    row's tokens in any order): the batched decoder keeps them so, as a ring per row, instead of
    building every row's text as a list on every step; ``windows[row]`` is that row's window."""

    tokens: np.ndarray

    @classmethod
    def of(cls, recents: Sequence[Sequence[int]], size: int) -> "CacheWindows":
        """The windows of the texts so far ``recents`` (``window_shares``' reading of each)."""
        windows = [text_tokens(recent)[-size:] if size > 0 else [] for recent in recents]
        tokens = np.full((len(windows), max(size, 1)), -1, dtype=np.int64)
        for row, window in enumerate(windows):
            tokens[row, : len(window)] = window
        return cls(tokens)

    def __getitem__(self, row: int) -> list[int]:
        tokens = self.tokens[row]
        return tokens[tokens >= 0].tolist()

    def lengths(self) -> np.ndarray:
        """Each row's window length."""
        return np.add.reduce(self.tokens >= 0, axis=1)

    def shares(self, lengths: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``window_shares`` of every row in one pass: the rows, words (ascending within a row, as
        ``window_shares`` gives them) and shares of all rows' distinct words. ``lengths``: the
        rows' ``lengths()`` if known (else counted from the words' runs)."""
        rows, size = self.tokens.shape
        ordered = np.sort(self.tokens, axis=1).ravel()  # each row's padding (-1) first
        first = np.empty(ordered.size + 1, dtype=bool)  # where a word's run begins; the end last
        first[0] = first[-1] = True
        np.not_equal(ordered[1:], ordered[:-1], out=first[1:-1])
        first[size:-1:size] = True
        starts = first.nonzero()[0]  # a run ends where the next begins (every row's end is one)
        counts = starts[1:] - starts[:-1]
        starts = starts[:-1]
        words = ordered.take(starts)
        real = (words >= 0).nonzero()[0]
        counts = counts.take(real)
        row_of = starts.take(real) // size
        if lengths is None:  # ``lengths()``, as floats: the same quotients
            lengths = np.bincount(row_of, weights=counts, minlength=rows)
        return row_of, words.take(real), counts / lengths.take(row_of)


def cache_token_probs(sentences: Sequence[Sequence[int]], size: int, before: Sequence[int] = ()) -> list[np.ndarray]:
    """The cache probability of every token after SENTENCE_START of each sentence (NaN while the
    window is empty: there is no cache probability then), the window running across the sentences in order after the text ``before``.

    Counted for all tokens at once: with the tokens sorted by (word, position), a token's count in
    the window is how many tokens of its word lie between its position - ``size`` and itself.
    """
    prior = np.asarray(text_tokens(before)[-size:] if size > 0 else [], dtype=np.int64)
    parts = [np.asarray(text_tokens(s), dtype=np.int64) for s in sentences]
    stream = np.concatenate([prior, *parts]) if parts else prior
    positions = np.arange(stream.size)
    span = stream.size + size + 1
    keys = stream * span + positions  # distinct, ordered by word then position
    order = np.argsort(keys, kind="stable")
    rank = np.empty(stream.size, dtype=np.int64)
    rank[order] = np.arange(stream.size)
    first = np.searchsorted(keys[order], stream * span + np.maximum(positions - size, 0))
    counts = rank - first  # tokens of the word among the ``size`` before (the token itself not counted)
    window = np.minimum(positions, size)
    probs = np.divide(counts, window, out=np.full(stream.size, np.nan), where=window > 0)
    ends = np.cumsum([prior.size, *(p.size for p in parts)])
    return [probs[a:b] for a, b in zip(ends[:-1], ends[1:])]

"""Encoded sentences as one flat int32 array and their offsets: what training, the n-gram counting
and scoring read, in memory or memory-mapped from the token cache (4 bytes a token, where a
Python list of ints takes about 36).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


class EncodedSentences(Sequence):
    """Sentence i is ``tokens[offsets[i]:offsets[i + 1]]`` (SENTENCE_START ... SENTENCE_END)."""

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray):
        if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0 or offsets[-1] != tokens.size:
            raise ValueError("offsets must run from 0 to the number of tokens")
        self.tokens = tokens
        self.offsets = offsets

    @classmethod
    def from_lists(cls, sentences: Sequence[Sequence[int]]) -> "EncodedSentences":
        if isinstance(sentences, EncodedSentences):
            return sentences
        lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
        offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        tokens = np.empty(int(offsets[-1]), dtype=np.int32)
        for i, sentence in enumerate(sentences):
            tokens[offsets[i] : offsets[i + 1]] = sentence
        return cls(tokens, offsets)

    def __len__(self) -> int:
        return self.offsets.size - 1

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("sentence index out of range")
        return self.tokens[self.offsets[index] : self.offsets[index + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.tokens[self.offsets[i] : self.offsets[i + 1]]

    def lengths(self) -> np.ndarray:
        """Tokens of each sentence, SENTENCE_START and SENTENCE_END included."""
        return np.diff(self.offsets)

    @property
    def predicted_tokens(self) -> int:
        """Tokens after SENTENCE_START: what one pass predicts."""
        return int(self.tokens.size - len(self))

    def select(self, indices: np.ndarray, chunk: int = 1 << 16) -> "EncodedSentences":
        """These sentences, in this order, copied into new arrays (a chunk of sentences at a time,
        so no index array as large as the corpus is ever made)."""
        indices = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths()[indices]
        offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        tokens = np.empty(int(offsets[-1]), dtype=np.int32)
        for first in range(0, indices.size, chunk):
            part = slice(first, first + chunk)
            n = lengths[part]
            shift = self.offsets[indices[part]] - offsets[:-1][part]
            positions = np.repeat(shift, n) + np.arange(offsets[first], offsets[first] + int(n.sum()), dtype=np.int64)
            tokens[offsets[first] : offsets[first] + int(n.sum())] = self.tokens[positions]
        return EncodedSentences(tokens, offsets)

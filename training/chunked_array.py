"""Flat arrays read a chunk at a time: from a raw file on disk, or from memory when they are small.

The n-gram counting of a large corpus makes arrays of hundreds of millions of entries, several
per order, and the fitting passes over each of them a few times. Read with ``np.fromfile`` at an
offset, a chunk costs only its own bytes while it is used; a memory-mapped file would instead
keep every page it had read as the process's resident memory until it is unmapped.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np


class ChunkedArray:
    """A one-dimensional array of ``dtype`` held in a raw file (``path``) or in memory (``data``)."""

    def __init__(self, dtype: np.dtype | type, size: int, path: Path | None = None, data: np.ndarray | None = None):
        self.dtype = np.dtype(dtype)
        self.size = int(size)
        self.path = path
        self.data = data

    @classmethod
    def in_memory(cls, data: np.ndarray) -> "ChunkedArray":
        return cls(data.dtype, data.size, data=data)

    def read(self, first: int, last: int) -> np.ndarray:
        """Entries first .. last - 1 (a copy when read from the file)."""
        first, last = max(first, 0), min(last, self.size)
        if last <= first:
            return np.zeros(0, dtype=self.dtype)
        if self.data is not None:
            return self.data[first:last]
        return np.fromfile(self.path, dtype=self.dtype, count=last - first, offset=first * self.dtype.itemsize)

    def chunks(self, step: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first index, entries) of consecutive chunks of ``step`` entries."""
        for first in range(0, self.size, step):
            yield first, self.read(first, first + step)

    def load(self) -> np.ndarray:
        """The whole array in memory."""
        return self.read(0, self.size)

    def __len__(self) -> int:
        return self.size

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        loaded = self.load()
        return loaded if dtype is None else loaded.astype(dtype)

    def delete(self) -> None:
        """Remove the file behind the array (nothing for an array in memory)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class ArrayWriter:
    """Appends chunks to a raw file, or to a list in memory when ``path`` is None."""

    def __init__(self, dtype: np.dtype | type, path: Path | None = None):
        self.dtype = np.dtype(dtype)
        self.path = path
        self.size = 0
        self.parts: list[np.ndarray] = []
        self.handle = open(path, "wb") if path is not None else None

    def append(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=self.dtype)
        self.size += values.size
        if self.handle is not None:
            values.tofile(self.handle)
        else:
            self.parts.append(values)

    def close(self) -> ChunkedArray:
        if self.handle is not None:
            self.handle.close()
            return ChunkedArray(self.dtype, self.size, path=self.path)
        data = np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=self.dtype)
        self.parts = []
        return ChunkedArray.in_memory(data)

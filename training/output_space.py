"""Will the model and its checkpoint fit? Checked before training, so a full disk costs seconds,
not a ten-minute run that cannot be saved.

The estimate is deliberately generous: float32 parameters, plus what the measured default 5-gram
took (60 MB for 784k training words, about 77 bytes per training word), and room for the file,
its checkpoint and the temporary copy an atomic write makes, all present at once.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

NGRAM_BYTES_PER_TRAINING_WORD = 80
COPIES_AT_ONCE = 3  # the checkpoint, the final file and the temporary file being written
MARGIN_BYTES = 32 * 1024 * 1024


def estimated_file_bytes(parameter_count: int, vocab_size: int, ngram_order: int, training_words: int) -> int:
    """A generous estimate of one saved model file's size (``parameter_count``: the model's, as it says)."""
    ngram = NGRAM_BYTES_PER_TRAINING_WORD * training_words if ngram_order > 0 else 0
    return 4 * parameter_count + ngram + 16 * vocab_size  # the vocabulary and its counts


def free_bytes(folder: Path) -> int:
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


def space_problem(folder: Path, file_bytes: int, free: Callable[[Path], int] | None = None) -> str | None:
    """None if the folder has room for the run's files, else a one-line reason."""
    needed = COPIES_AT_ONCE * file_bytes + MARGIN_BYTES
    available = (free or free_bytes)(folder)
    if available >= needed:
        return None
    return (f"not enough free space in {folder}: {available / 2**20:,.0f} MiB free, about {needed / 2**20:,.0f} MiB "
            f"needed for the model file, its checkpoint and the temporary copy of an atomic write")

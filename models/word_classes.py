"""Words grouped into frequency classes for the class-based output layer (Mikolov et al., 2011).

Each class is a contiguous range of word indices, so a class's output weights are a slice of
``V`` (no copy, no index list). The three special tokens get a class each: masking UNKNOWN_TOKEN,
SENTENCE_START or SENTENCE_END out of a sample then means masking one class. The other words,
most frequent first as the vocabulary orders them, are cut where the running unigram mass
crosses a multiple of 1/K ("frequency binning"): frequent words share small classes, rare words
large ones, so the expected size of the target's class (the work per word) stays near C / K.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

N_SPECIAL = 3  # UNKNOWN_TOKEN, SENTENCE_START, SENTENCE_END: one class each


@dataclass(frozen=True)
class WordClasses:
    """Class k holds words ``starts[k]`` up to (not including) ``starts[k + 1]``."""

    starts: np.ndarray

    def __post_init__(self) -> None:
        starts = np.asarray(self.starts, dtype=np.int64)
        if starts.ndim != 1 or starts.size < 2 or starts[0] != 0 or np.any(np.diff(starts) <= 0):
            raise ValueError("class starts must begin at 0 and strictly increase")
        object.__setattr__(self, "starts", starts)
        object.__setattr__(self, "word_class", np.repeat(np.arange(starts.size - 1), np.diff(starts)))

    @property
    def n_classes(self) -> int:
        return self.starts.size - 1

    @property
    def vocab_size(self) -> int:
        return int(self.starts[-1])

    def words_of(self, k: int) -> slice:
        return slice(int(self.starts[k]), int(self.starts[k + 1]))

    @classmethod
    def from_counts(cls, counts: Sequence[int], n_classes: int) -> "WordClasses":
        """About ``n_classes`` classes of equal unigram mass over the words after the specials."""
        counts = np.asarray(counts, dtype=np.float64)
        if counts.size <= N_SPECIAL:
            raise ValueError("need at least one word besides the special tokens")
        if n_classes <= N_SPECIAL:
            raise ValueError(f"need more than {N_SPECIAL} classes (the special tokens take one each)")
        words = counts[N_SPECIAL:] + 1.0  # +1: words never seen in training still get a class
        bins = n_classes - N_SPECIAL
        mass_before = (np.cumsum(words) - words) / words.sum()
        bin_of_word = np.minimum((mass_before * bins).astype(np.int64), bins - 1)
        # a word heavier than 1/bins skips bin numbers: keep only the bins that occur
        first_words = np.flatnonzero(np.diff(bin_of_word, prepend=-1)) + N_SPECIAL
        starts = np.concatenate([np.arange(N_SPECIAL), first_words, [counts.size]])
        return cls(starts)

    @classmethod
    def default_count(cls, vocab_size: int) -> int:
        """About sqrt(C) classes: the size that balances class and word work."""
        return max(N_SPECIAL + 1, int(round(np.sqrt(vocab_size))))

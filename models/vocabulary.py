"""The word <-> index mapping, built from token frequencies."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

UNKNOWN_TOKEN = "UNKNOWN_TOKEN"
SENTENCE_START = "SENTENCE_START"
SENTENCE_END = "SENTENCE_END"
SPECIAL_TOKENS = (UNKNOWN_TOKEN, SENTENCE_START, SENTENCE_END)


class Vocabulary:
    """Index 0-2 are the special tokens; the rest are words, most frequent first."""

    def __init__(self, words: Sequence[str], counts: Sequence[int] | None = None, casing: Mapping[str, str] | None = None):
        if tuple(words[:3]) != SPECIAL_TOKENS:
            raise ValueError(f"the vocabulary must start with {SPECIAL_TOKENS}")
        if len(set(words)) != len(words):
            raise ValueError("the vocabulary has repeated words")
        self.words = list(words)
        self.counts = list(counts) if counts is not None else [0] * len(words)
        self.index = {w: i for i, w in enumerate(self.words)}
        # the corpus's case of the words where it is not lower case (models.casing); empty: unknown
        self.casing = {w: form for w, form in (casing or {}).items() if w in self.index}

    unknown_id = 0
    start_id = 1
    end_id = 2

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], size: int) -> "Vocabulary":
        """The ``size`` most frequent tokens of these sentences, the three special tokens included."""
        counts: Counter[str] = Counter()
        n_sentences = 0
        for sentence in sentences:
            counts.update(sentence)
            n_sentences += 1
        return cls.from_counts(counts, n_sentences, size)

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], n_sentences: int, size: int,
                    casing: Mapping[str, str] | None = None) -> "Vocabulary":
        """The ``size`` most frequent of these words, the three special tokens included.

        Ties are broken alphabetically so the result does not depend on corpus order.
        """
        if size < len(SPECIAL_TOKENS) + 1:
            raise ValueError(f"vocabulary size must be at least {len(SPECIAL_TOKENS) + 1}")
        counts = {w: c for w, c in counts.items() if c > 0 and w not in SPECIAL_TOKENS}
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        kept = ranked[: size - len(SPECIAL_TOKENS)]
        unknown = sum(counts.values()) - sum(c for _, c in kept)
        words = list(SPECIAL_TOKENS) + [w for w, _ in kept]
        freq = [unknown, n_sentences, n_sentences] + [c for _, c in kept]
        return cls(words, freq, casing)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def encode(self, words: Iterable[str]) -> list[int]:
        """Word indices; out-of-vocabulary words become UNKNOWN_TOKEN."""
        return [self.index.get(w, self.unknown_id) for w in words]

    def encode_sentence(self, words: Sequence[str]) -> list[int]:
        """SENTENCE_START w1 ... wn SENTENCE_END as indices."""
        return [self.start_id, *self.encode(words), self.end_id]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.words[i] for i in ids]

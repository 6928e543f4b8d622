"""The RNN interpolated with a Kneser-Ney n-gram model, as in Mikolov's RNNLM toolkit, and with
a unigram cache of the recent text:

    P(w | text so far) = (1 - c) * [weight * P_rnn(w | history) + (1 - weight) * P_kn(w | last n - 1 words)]
                         + c * P_cache(w)

where P_cache(w) is w's share of the last ``cache_size`` tokens of the text so far
(``models.recent_text``) and c is ``cache_weight`` (0 while that window is empty). A text keeps
repeating its own names and topics; the cache lends them probability.

The two models err differently (the RNN generalises across contexts, the n-gram remembers exact
phrases), so the mixture is better than either: on Persuasion, the default RNN's 101 and the
5-gram's 99 make about 86 together (see the README). Training chooses the weight on a
development split of the training text (``training.interpolation``), never on the text it is
measured on; the cache's weight and size are chosen there after them.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from models.ngram_table import NewestFirst, NgramTable
from models.recent_text import CacheWindows, cache_token_probs, window_shares

DEFAULT_RNN_WEIGHT = 0.5


@dataclass
class NgramMixture:
    ngram: NgramTable
    rnn_weight: float = DEFAULT_RNN_WEIGHT
    cache_weight: float = 0.0
    cache_size: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.rnn_weight <= 1.0:
            raise ValueError("the RNN's weight in the mixture must be in (0, 1]")
        if not 0.0 <= self.cache_weight < 1.0 or self.cache_size < 0 or (self.cache_weight > 0) != (self.cache_size > 0):
            raise ValueError("the cache's weight must be in [0, 1), its window positive exactly when the weight is")

    def cache_shares(self, recent: Sequence[int]) -> tuple[float, np.ndarray, np.ndarray]:
        """The cache's weight for the text so far ``recent`` (0 while its window is empty or there
        is no cache), and the window's words with their shares."""
        if not self.cache_weight:
            return 0.0, np.zeros(0, np.int64), np.zeros(0)
        words, shares = window_shares(recent, self.cache_size)
        return (self.cache_weight if words.size else 0.0), words, shares

    def _add_cache(self, mixed: np.ndarray, recent: Sequence[int]) -> None:
        weight, words, shares = self.cache_shares(recent)
        if weight:
            mixed *= 1.0 - weight
            mixed[words] += weight * shares

    @property
    def order(self) -> int:
        return self.ngram.order

    def next_word_probs(self, rnn_probs: np.ndarray, history: Sequence[int], recent: Sequence[int] = ()) -> np.ndarray:
        """P(w | history) of every word, from the RNN's probabilities, the sentence's words so far
        and ``recent``, the text so far that the cache reads (``models.recent_text``)."""
        mixed = self.ngram.next_word_probs(history)
        mixed *= 1.0 - self.rnn_weight
        mixed += self.rnn_weight * rnn_probs
        self._add_cache(mixed, recent)
        return mixed

    def next_word_probs_batch(self, rnn_probs: np.ndarray, histories: Sequence[Sequence[int]] | NewestFirst,
                              recents: Sequence[Sequence[int]] | CacheWindows | None = None) -> np.ndarray:
        """``next_word_probs`` of every row of ``rnn_probs`` (B x C) with its history and recent
        text (a list per row, or the decoder's ``CacheWindows``), bit for bit."""
        mixed = self.ngram.next_word_probs_batch(histories)
        mixed *= 1.0 - self.rnn_weight
        mixed += self.rnn_weight * rnn_probs
        if recents is not None and self.cache_weight:
            self._add_caches(mixed, recents if isinstance(recents, CacheWindows) else CacheWindows.of(recents, self.cache_size))
        return mixed

    def _add_caches(self, mixed: np.ndarray, windows: CacheWindows) -> None:
        """``_add_cache`` for every row at once (a row with an empty window is scaled by 1 and
        gets nothing, as ``_add_cache`` leaves it)."""
        lengths = windows.lengths()
        rows, words, shares = windows.shares(lengths)
        weight = np.where(lengths > 0, self.cache_weight, 0.0)
        mixed *= (1.0 - weight)[:, None]
        mixed[rows, words] += weight.take(rows) * shares  # a row's words are distinct

    def next_word_log_probs_batch(self, rnn_log_probs: np.ndarray, histories: Sequence[Sequence[int]] | NewestFirst,
                                  recents: Sequence[Sequence[int]] | CacheWindows | None = None) -> np.ndarray:
        """``next_word_log_probs`` of every row of ``rnn_log_probs`` (B x C) with its history, bit for bit."""
        with np.errstate(divide="ignore"):
            return np.log(self.next_word_probs_batch(np.exp(rnn_log_probs), histories, recents))

    def next_word_log_probs(self, rnn_log_probs: np.ndarray, history: Sequence[int], recent: Sequence[int] = ()) -> np.ndarray:
        """log P(w | history) of every word, from the RNN's log-probabilities and the words so far."""
        with np.errstate(divide="ignore"):  # SENTENCE_START: probability 0 in both
            return np.log(self.next_word_probs(np.exp(rnn_log_probs), history, recent))

    def sentence_log_probs(self, rnn_log_probs: np.ndarray, sentence: Sequence[int], before: Sequence[int] = ()) -> np.ndarray:
        """Mixed log-probabilities of a sentence's tokens after SENTENCE_START, given the RNN's and
        the text ``before`` it."""
        return next(self.text_log_probs([rnn_log_probs], [sentence], before))

    def text_log_probs(self, rnn_log_probs: Sequence[np.ndarray], sentences: Sequence[Sequence[int]],
                       before: Sequence[int] = ()) -> Iterator[np.ndarray]:
        """``sentence_log_probs`` of consecutive sentences of one text (after the text ``before``),
        one sentence at a time: the cache's window runs across them."""
        caches = cache_token_probs(sentences, self.cache_size, before) if self.cache_weight else [None] * len(sentences)
        for rnn, sentence, cache in zip(rnn_log_probs, sentences, caches):
            mixed = self.rnn_weight * np.exp(rnn) + (1.0 - self.rnn_weight) * self.ngram.token_probs(sentence)
            if cache is not None:
                mixed = self.with_cache(mixed, cache)
            yield np.log(mixed)

    def with_cache(self, mixed: np.ndarray, cache: np.ndarray) -> np.ndarray:
        """Token probabilities ``mixed`` with the cache's ``cache`` (NaN where the window was empty)."""
        return np.where(~np.isnan(cache), (1.0 - self.cache_weight) * mixed + self.cache_weight * cache, mixed)

    def to_payload(self) -> dict:
        return {"rnn_weight": float(self.rnn_weight), "cache_weight": float(self.cache_weight),
                "cache_size": int(self.cache_size), "kneser_ney": self.ngram.to_payload()}

    @classmethod
    def from_payload(cls, payload: dict) -> "NgramMixture":
        """A file written before the cache existed has none (weight 0)."""
        return cls(NgramTable.from_payload(payload["kneser_ney"]), float(payload["rnn_weight"]),
                   float(payload.get("cache_weight", 0.0)), int(payload.get("cache_size", 0)))

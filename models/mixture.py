"""The RNN interpolated with a Kneser-Ney n-gram model, as in Mikolov's RNNLM toolkit.

    P(w | history) = weight * P_rnn(w | history) + (1 - weight) * P_kn(w | last n - 1 words)

The two models err differently (the RNN generalises across contexts, the n-gram remembers exact
phrases), so the mixture is better than either: on Persuasion, the default RNN's 101 and the
5-gram's 99 make about 86 together (see the README). Training chooses the weight on a
development split of the training text (``training.interpolation``), never on the text it is
measured on.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.ngram_table import NgramTable

DEFAULT_RNN_WEIGHT = 0.5


@dataclass
class NgramMixture:
    ngram: NgramTable
    rnn_weight: float = DEFAULT_RNN_WEIGHT

    def __post_init__(self) -> None:
        if not 0.0 < self.rnn_weight <= 1.0:
            raise ValueError("the RNN's weight in the mixture must be in (0, 1]")

    @property
    def order(self) -> int:
        return self.ngram.order

    def next_word_probs(self, rnn_probs: np.ndarray, history: Sequence[int]) -> np.ndarray:
        """P(w | history) of every word, from the RNN's probabilities and the words so far."""
        mixed = self.ngram.next_word_probs(history)
        mixed *= 1.0 - self.rnn_weight
        mixed += self.rnn_weight * rnn_probs
        return mixed

    def next_word_probs_batch(self, rnn_probs: np.ndarray, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """``next_word_probs`` of every row of ``rnn_probs`` (B x C) with its history, bit for bit."""
        mixed = self.ngram.next_word_probs_batch(histories)
        mixed *= 1.0 - self.rnn_weight
        mixed += self.rnn_weight * rnn_probs
        return mixed

    def next_word_log_probs_batch(self, rnn_log_probs: np.ndarray, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """``next_word_log_probs`` of every row of ``rnn_log_probs`` (B x C) with its history, bit for bit."""
        with np.errstate(divide="ignore"):
            return np.log(self.next_word_probs_batch(np.exp(rnn_log_probs), histories))

    def next_word_log_probs(self, rnn_log_probs: np.ndarray, history: Sequence[int]) -> np.ndarray:
        """log P(w | history) of every word, from the RNN's log-probabilities and the words so far."""
        with np.errstate(divide="ignore"):  # SENTENCE_START: probability 0 in both
            return np.log(self.next_word_probs(np.exp(rnn_log_probs), history))

    def sentence_log_probs(self, rnn_log_probs: np.ndarray, sentence: Sequence[int]) -> np.ndarray:
        """Mixed log-probabilities of a sentence's tokens after SENTENCE_START, given the RNN's."""
        kn = self.ngram.token_probs(sentence)
        return np.log(self.rnn_weight * np.exp(rnn_log_probs) + (1.0 - self.rnn_weight) * kn)

    def to_payload(self) -> dict:
        return {"rnn_weight": float(self.rnn_weight), "kneser_ney": self.ngram.to_payload()}

    @classmethod
    def from_payload(cls, payload: dict) -> "NgramMixture":
        return cls(NgramTable.from_payload(payload["kneser_ney"]), float(payload["rnn_weight"]))

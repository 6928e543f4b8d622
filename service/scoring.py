"""How likely the model finds a text, for POST /score: the same code as ``training/evaluate.py``.

``models.scoring`` tokenizes as training does and scores with the batched forward pass (and the
n-gram mixture, when the model file has one), so a text's perplexity here is the figure training
and evaluation report for it.
"""
from __future__ import annotations

import time

from models.mixture import NgramMixture
from models.recurrent_lm import RecurrentLM
from models.scoring import DeadlinePassed, TextScore, score_text
from models.vocabulary import Vocabulary


class ScoringTimeout(Exception):
    """A text was still being scored at the per-request time limit (the generation's) and stopped."""

    def __init__(self, limit: float):
        super().__init__(f"the scoring was stopped at the time limit of {limit:g} s per request; send a shorter text")
        self.limit = limit


class TextScorer:
    """Scores texts with the service's model; the one place the scoring function is chosen.
    ``time_limit`` (seconds, None for none) bounds each text, as it bounds each generation."""

    def __init__(self, model: RecurrentLM, vocab: Vocabulary, mixture: NgramMixture | None = None,
                 time_limit: float | None = None):
        self.model = model
        self.vocab = vocab
        self.mixture = mixture
        self.time_limit = time_limit

    def score(self, text: str) -> TextScore:
        """The text's sentences scored; no sentences for a text without words."""
        deadline = None if self.time_limit is None else time.monotonic() + self.time_limit
        try:
            return score_text(self.model, self.vocab, text, self.mixture, deadline)
        except DeadlinePassed:
            raise ScoringTimeout(self.time_limit) from None
        except ValueError:  # no words to score: an empty answer, not an error
            return TextScore([])

"""How likely the model finds a text, for POST /score: the same code as ``training/evaluate.py``.

``models.scoring`` tokenizes as training does and scores with the batched forward pass (and the
n-gram mixture, when the model file has one), so a text's perplexity here is the figure training
and evaluation report for it.
"""
from __future__ import annotations

import time

import numpy as np

from models.mixture import NgramMixture
from models.recurrent_lm import RecurrentLM
from models.sampling import top_alternatives
from models.scoring import DeadlinePassed, TextScore, score_sentences, score_text
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

    def score_words(self, words: list[str], top_n: int = 0) -> list[tuple[float, tuple[tuple[int, float], ...]]]:
        """Each word's log-probability after SENTENCE_START and the words before it (a prompt read
        as generation reads it: one sentence, continued), with the ``top_n`` likeliest words at
        its place. For a one-sentence text the log-probabilities are the figures POST /score gives
        its words (the same code); OpenAI's echo with logprobs reports them."""
        if not words:
            return []
        deadline = None if self.time_limit is None else time.monotonic() + self.time_limit
        ids = [self.vocab.start_id, *self.vocab.encode(words)]
        try:
            scores = score_sentences(self.model, [ids], mixture=self.mixture, deadline=deadline)[0].tolist()
        except DeadlinePassed:
            raise ScoringTimeout(self.time_limit) from None
        if top_n <= 0:
            return [(score, ()) for score in scores]
        return [(score, self._with_own_score(top, word_id, score))
                for score, word_id, top in zip(scores, ids[1:], self._alternatives(ids, top_n))]

    def _alternatives(self, ids: list[int], top_n: int) -> list[tuple[tuple[int, float], ...]]:
        """The likeliest words after each prefix of ``ids`` (the one-sentence forward pass)."""
        probs, _ = self.model.forward_propagation(ids[:-1])
        rows = []
        for t, row in enumerate(probs):
            with np.errstate(divide="ignore"):
                logp = np.log(row.astype(np.float64))
            if self.mixture is not None:
                logp = self.mixture.next_word_log_probs(logp, ids[: t + 1], ids[: t + 1])
            rows.append(top_alternatives(logp, top_n))
        return rows

    @staticmethod
    def _with_own_score(top: tuple[tuple[int, float], ...], word_id: int, score: float) -> tuple[tuple[int, float], ...]:
        """The word's own entry carries the scored figure, so a word that is the likeliest compares
        equal to the best alternative (how lm-evaluation-harness tells greedy continuations)."""
        return tuple((i, score if i == word_id else logprob) for i, logprob in top)

"""How likely the model finds a text, for POST /score: the same code as ``training/evaluate.py``.

``models.scoring`` tokenizes as training does and scores with the batched forward pass (and the
n-gram mixture, when the model file has one), so a text's perplexity here is the figure training
and evaluation report for it.
"""
from __future__ import annotations

from models.mixture import NgramMixture
from models.recurrent_lm import RecurrentLM
from models.scoring import TextScore, score_text
from models.vocabulary import Vocabulary


class TextScorer:
    """Scores texts with the service's model; the one place the scoring function is chosen."""

    def __init__(self, model: RecurrentLM, vocab: Vocabulary, mixture: NgramMixture | None = None):
        self.model = model
        self.vocab = vocab
        self.mixture = mixture

    def score(self, text: str) -> TextScore:
        """The text's sentences scored; no sentences for a text without words."""
        try:
            return score_text(self.model, self.vocab, text, self.mixture)
        except ValueError:  # no words to score: an empty answer, not an error
            return TextScore([])

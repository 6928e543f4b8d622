"""How likely the model finds a text: per-word log-probabilities, out-of-vocabulary words and
perplexities, for POST /score.

This is the service's own small copy of what ``models/scoring.py`` (being written on another
branch, ``score_text(model, vocab, text) -> TextScore``) will provide. It scores with the same
batched forward pass as training's evaluation (``make_batch`` + ``RNN.token_log_probs``), so its
perplexity is the one training reports: exp(mean negative log-likelihood per predicted token),
sentence ends and UNKNOWN_TOKEN targets included. Once models/scoring.py is merged,
``TextScorer.score`` calls it instead of ``score_text`` below and this module's scoring goes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models.batching import make_batch
from models.rnn import RNN
from models.text import tokenize_text
from models.vocabulary import SENTENCE_END, Vocabulary


@dataclass(frozen=True)
class WordScore:
    """One predicted token: a word of the text, or the end of its sentence (``special``)."""

    word: str
    logprob: float
    oov: bool  # not in the vocabulary: the model predicted UNKNOWN_TOKEN here
    special: bool = False


@dataclass(frozen=True)
class SentenceScore:
    words: list[WordScore]

    @property
    def logprob(self) -> float:
        return float(sum(w.logprob for w in self.words))

    @property
    def perplexity(self) -> float:
        return perplexity(self.logprob, len(self.words))


@dataclass(frozen=True)
class TextScore:
    sentences: list[SentenceScore]

    @property
    def tokens(self) -> int:
        return sum(len(s.words) for s in self.sentences)

    @property
    def logprob(self) -> float:
        return float(sum(s.logprob for s in self.sentences))

    @property
    def perplexity(self) -> float:
        return perplexity(self.logprob, self.tokens)

    @property
    def oov_words(self) -> list[str]:
        return list(dict.fromkeys(w.word for s in self.sentences for w in s.words if w.oov))


def perplexity(logprob: float, tokens: int) -> float:
    """exp(mean negative log-likelihood per token); infinity for a sum too large for a float."""
    if tokens == 0:
        raise ValueError("no tokens to score")
    try:
        return math.exp(-logprob / tokens)
    except OverflowError:
        return math.inf


def score_text(model: RNN, vocab: Vocabulary, text: str) -> TextScore:
    """Every sentence of ``text`` scored word by word, SENTENCE_END included."""
    sentences = tokenize_text(text)
    if not sentences:
        return TextScore([])
    encoded = [vocab.encode_sentence(words) for words in sentences]
    batch = make_batch([e[:-1] for e in encoded], [e[1:] for e in encoded])
    logprobs = np.zeros(batch.mask.shape)
    logprobs.ravel()[np.flatnonzero(batch.mask.ravel())] = model.token_log_probs(
        batch.inputs, batch.targets, batch.mask
    )
    scored = []
    for column, words in enumerate(sentences):
        column_logprobs = logprobs[: len(words) + 1, column].tolist()
        scored.append(SentenceScore(
            [WordScore(w, lp, w not in vocab) for w, lp in zip(words, column_logprobs)]
            + [WordScore(SENTENCE_END, column_logprobs[-1], False, special=True)]
        ))
    return TextScore(scored)


class TextScorer:
    """Scores texts with the service's model; the one place the scoring function is chosen."""

    def __init__(self, model: RNN, vocab: Vocabulary):
        self.model = model
        self.vocab = vocab

    def score(self, text: str) -> TextScore:
        return score_text(self.model, self.vocab, text)

"""From raw paragraphs to encoded sentences and a vocabulary."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from models.text import tokenize_paragraphs
from models.vocabulary import Vocabulary
from training.corpus import RawCorpus

log = logging.getLogger(__name__)

VALIDATION_SHARE = 0.1


@dataclass
class Dataset:
    """Encoded sentences (SENTENCE_START ... SENTENCE_END) for training and validation."""

    name: str
    vocab: Vocabulary
    train: list[list[int]]
    valid: list[list[int]]

    @property
    def train_words(self) -> int:
        """Predicted tokens in one pass over the training sentences."""
        return sum(len(s) - 1 for s in self.train)

    @property
    def valid_words(self) -> int:
        return sum(len(s) - 1 for s in self.valid)


def sentences_of(paragraphs: list[str]) -> list[list[str]]:
    return tokenize_paragraphs(paragraphs)


def build_dataset(raw: RawCorpus, vocab_size: int, vocab: Vocabulary | None = None) -> Dataset:
    """Tokenize, hold out the last 10% of sentences if no validation text was given, encode.

    An existing ``vocab`` (when resuming) is reused so the indices match the saved parameters.
    """
    train = sentences_of(raw.train)
    valid = sentences_of(raw.valid)
    if not valid:
        cut = len(train) - max(1, round(len(train) * VALIDATION_SHARE))
        train, valid = train[:cut], train[cut:]
    if len(train) < 1 or len(valid) < 1:
        raise ValueError(f"corpus {raw.name!r} has too few sentences to train and validate")
    if vocab is None:
        vocab = Vocabulary.build(train, vocab_size)
    log.info(
        "corpus %s: %d training sentences, %d validation sentences, vocabulary %d",
        raw.name, len(train), len(valid), len(vocab),
    )
    return Dataset(
        raw.name, vocab, [vocab.encode_sentence(s) for s in train], [vocab.encode_sentence(s) for s in valid]
    )

"""From raw paragraphs to encoded sentences and a vocabulary."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.text import tokenize_paragraphs
from models.vocabulary import Vocabulary
from training.corpus import CorpusError, RawCorpus
from training.sentences import EncodedSentences

log = logging.getLogger(__name__)

VALIDATION_SHARE = 0.1


@dataclass
class Dataset:
    """Encoded sentences (SENTENCE_START ... SENTENCE_END) for training and validation."""

    name: str
    vocab: Vocabulary
    train: EncodedSentences
    valid: EncodedSentences

    @property
    def train_words(self) -> int:
        """Predicted tokens in one pass over the training sentences."""
        return self.train.predicted_tokens

    @property
    def valid_words(self) -> int:
        return self.valid.predicted_tokens


def sentences_of(paragraphs: list[str]) -> list[list[str]]:
    return tokenize_paragraphs(paragraphs)


def split_long(sentences: list[list[str]], max_words: int | None) -> tuple[list[list[str]], int]:
    """Sentences longer than ``max_words`` cut into consecutive pieces of at most that many words
    (a batch pads every sentence to its longest, and a line without punctuation can be one
    sentence of thousands of words); also how many sentences were cut. None: no limit."""
    if max_words is None:
        return sentences, 0
    pieces, cut = [], 0
    for sentence in sentences:
        if len(sentence) <= max_words:
            pieces.append(sentence)
            continue
        cut += 1
        pieces.extend(sentence[start : start + max_words] for start in range(0, len(sentence), max_words))
    return pieces, cut


def build_dataset(
    raw: RawCorpus, vocab_size: int, vocab: Vocabulary | None = None, max_sentence_words: int | None = None
) -> Dataset:
    """Tokenize, cut sentences longer than ``max_sentence_words``, hold out the last 10% of
    sentences if no validation text was given, encode.

    An existing ``vocab`` (when resuming) is reused so the indices match the saved parameters.
    Too few sentences to train and validate on is a CorpusError naming the corpus.
    """
    train, train_cut = split_long(sentences_of(raw.train), max_sentence_words)
    valid, valid_cut = split_long(sentences_of(raw.valid), max_sentence_words)
    found = len(train)
    if not valid:
        cut = len(train) - max(1, round(len(train) * VALIDATION_SHARE))
        train, valid = train[:cut], train[cut:]
    if len(train) < 1 or len(valid) < 1:
        raise CorpusError(f"{raw.name}: {found} sentence{'s' if found != 1 else ''} of text; "
                          "at least 2 are needed, to train on and to validate on")
    if vocab is None:
        vocab = Vocabulary.build(train, vocab_size)
    cut_note = f"; {train_cut + valid_cut} sentences over {max_sentence_words} words cut" if max_sentence_words else ""
    log.info(
        "corpus %s: %d training sentences, %d validation sentences, vocabulary %d%s",
        raw.name, len(train), len(valid), len(vocab), cut_note,
    )
    return Dataset(raw.name, vocab, EncodedSentences.from_lists([vocab.encode_sentence(s) for s in train]),
                   EncodedSentences.from_lists([vocab.encode_sentence(s) for s in valid]))


# the sentences the interpolation weight is chosen on: one in DEV_STRIDE of the training text,
# spread over all of it, and no more words than a one-number choice needs
DEV_STRIDE = 50
DEV_MAX_WORDS = 50_000


def development_split(train: Sequence[Sequence[int]]) -> tuple[EncodedSentences, EncodedSentences]:
    """(training sentences, development sentences): every DEV_STRIDE-th sentence (wider apart on a
    large corpus, to stay near DEV_MAX_WORDS) is held out of all training."""
    train = EncodedSentences.from_lists(train)
    stride = max(DEV_STRIDE, -(-train.predicted_tokens // DEV_MAX_WORDS))
    held = np.zeros(len(train), dtype=bool)
    held[stride - 1 :: stride] = True
    if not held.any() and len(train) > 1:
        held[-1] = True
    return train.select(np.flatnonzero(~held)), train.select(np.flatnonzero(held))

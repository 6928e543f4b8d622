"""From raw paragraphs to encoded sentences and a vocabulary."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from models.text import tokenize_paragraphs
from models.vocabulary import Vocabulary
from training.corpus import CorpusError, RawCorpus

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
    return Dataset(
        raw.name, vocab, [vocab.encode_sentence(s) for s in train], [vocab.encode_sentence(s) for s in valid]
    )


# the sentences the interpolation weight is chosen on: one in DEV_STRIDE of the training text,
# spread over all of it, and no more words than a one-number choice needs
DEV_STRIDE = 50
DEV_MAX_WORDS = 50_000


def development_split(train: list[list[int]]) -> tuple[list[list[int]], list[list[int]]]:
    """(training sentences, development sentences): every DEV_STRIDE-th sentence (wider apart on a
    large corpus, to stay near DEV_MAX_WORDS) is held out of all training."""
    words = sum(len(s) - 1 for s in train)
    stride = max(DEV_STRIDE, -(-words // DEV_MAX_WORDS))
    held = set(range(stride - 1, len(train), stride)) or ({len(train) - 1} if len(train) > 1 else set())
    return [s for i, s in enumerate(train) if i not in held], [train[i] for i in sorted(held)]

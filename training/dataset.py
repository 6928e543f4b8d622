"""From raw paragraphs to encoded sentences and a vocabulary."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.recent_text import text_tokens
from models.text import tokenize_paragraphs
from models.vocabulary import Vocabulary
from training.corpus import CorpusError, RawCorpus, corpus_sources
from training.sentences import EncodedSentences
from training.token_cache import encode, split_long, tokenized

log = logging.getLogger(__name__)

VALIDATION_SHARE = 0.1
VALIDATION_MAX_WORDS = 200_000
TOKEN_CACHE = "token-cache"  # under the data folder


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
        cut = len(train) - held_out_count([len(s) for s in train])
        train, valid = train[:cut], train[cut:]
    enough_sentences(raw.name, found, len(train), len(valid))
    if vocab is None:
        vocab = Vocabulary.build(train, vocab_size)
    describe(raw.name, len(train), len(valid), len(vocab), train_cut + valid_cut, max_sentence_words)
    return Dataset(raw.name, vocab, EncodedSentences.from_lists([vocab.encode_sentence(s) for s in train]),
                   EncodedSentences.from_lists([vocab.encode_sentence(s) for s in valid]))


def held_out_count(lengths: Sequence[int] | np.ndarray) -> int:
    """Sentences held out at the end of a text without a validation file: the last 10%, at least
    one, and no more than VALIDATION_MAX_WORDS words (each evaluation scores all of them)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    share = max(1, round(lengths.size * VALIDATION_SHARE))
    within_cap = int(np.searchsorted(np.cumsum(lengths[::-1]), VALIDATION_MAX_WORDS, side="right"))
    return min(share, max(1, within_cap))


def enough_sentences(name: str, found: int, train: int, valid: int) -> None:
    if train < 1 or valid < 1:
        raise CorpusError(f"{name}: {found} sentence{'s' if found != 1 else ''} of text; "
                          "at least 2 are needed, to train on and to validate on")


def describe(name: str, train: int, valid: int, vocab: int, cut: int, max_sentence_words: int | None,
             note: str = "") -> None:
    cut_note = f"; {cut} sentences over {max_sentence_words} words cut" if max_sentence_words else ""
    log.info("corpus %s: %d training sentences, %d validation sentences, vocabulary %d%s%s",
             name, train, valid, vocab, cut_note, note)


def load_dataset(
    corpus: str, validation: str | None, data_dir: Path, vocab_size: int, vocab: Vocabulary | None = None,
    max_sentence_words: int | None = None, workers: int = 1,
) -> Dataset:
    """``build_dataset``'s sentences and vocabulary through the token cache (training.token_cache):
    tokenized on ``workers`` cores the first time, memory-mapped from then on."""
    train_source, valid_source = corpus_sources(corpus, validation, Path(data_dir))
    cache = tokenized(train_source, valid_source, Path(data_dir) / TOKEN_CACHE, max_sentence_words, workers)
    train, valid = cache.train, cache.valid
    found = len(train)
    cut = found
    if valid is None:
        cut = found - held_out_count(np.diff(train.offsets)) if found else 0
        train, valid = train.take(0, cut), train.take(cut, found)
    enough_sentences(corpus, found, len(train), len(valid))
    if vocab is None:
        vocab = Vocabulary.from_counts(cache.word_counts(train), len(train), vocab_size, cache.casing)
    describe(corpus, len(train), len(valid), len(vocab), cache.sentences_cut, max_sentence_words,
             f"; tokens {'cached' if cache.built else 'read from the cache'} in {cache.folder}")
    return Dataset(corpus, vocab, encode(cache, train, vocab, f"train-{cut}"), encode(cache, valid, vocab, f"valid-{cut}"))


# the sentences the interpolation weight is chosen on: one in DEV_STRIDE of the training text,
# spread over all of it, and no more words than a one-number choice needs
DEV_STRIDE = 50
DEV_MAX_WORDS = 50_000


def development_split(train: Sequence[Sequence[int]]) -> tuple[EncodedSentences, EncodedSentences]:
    """(training sentences, development sentences): every DEV_STRIDE-th sentence (wider apart on a
    large corpus, to stay near DEV_MAX_WORDS) is held out of all training."""
    train = EncodedSentences.from_lists(train)
    held = _held_out(train)
    return train.select(np.flatnonzero(~held)), train.select(np.flatnonzero(held))


def _held_out(train: EncodedSentences) -> np.ndarray:
    """Which sentences ``development_split`` holds out."""
    stride = max(DEV_STRIDE, -(-train.predicted_tokens // DEV_MAX_WORDS))
    held = np.zeros(len(train), dtype=bool)
    held[stride - 1 :: stride] = True
    if not held.any() and len(train) > 1:
        held[-1] = True
    return held


def development_contexts(train: Sequence[Sequence[int]], size: int) -> list[np.ndarray]:
    """The text before each development sentence of ``development_split(train)``, its last ``size``
    tokens that the mixture's cache counts (``models.recent_text``): the cache is chosen on the
    development sentences read in their place in the text."""
    train = EncodedSentences.from_lists(train)
    contexts = []
    for index in np.flatnonzero(_held_out(train)).tolist():
        end = int(train.offsets[index])
        # every SENTENCE_START is followed by a counted token, so 2 * size + 2 tokens hold size counted ones
        contexts.append(np.asarray(text_tokens(train.tokens[max(0, end - 2 * size - 2) : end])[-size:], dtype=np.int64))
    return contexts

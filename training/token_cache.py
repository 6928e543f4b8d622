"""Tokenize a corpus once, on every core, into int32 arrays on disk that every later run maps.

The corpus is read as a stream of paragraphs, cut into chunks that worker processes tokenize
(NLTK's Punkt and Treebank tokenizers, ``models.text``; the corpus is the user's own text, so
without NLTK's per-match time limit: ``TrustedTextWordTokenizer``) and cut to
``max_sentence_words``. The main process numbers the words in the order they first appear and appends each chunk's word
numbers to a file, so memory holds one chunk per worker and the distinct words, never the
corpus. The result is a folder under ``DATA_DIR/token-cache`` named by a SHA-256 of the source
files' bytes and the tokenizer settings: a changed file, validation file or setting gives a new
folder, and the same ones find the finished folder and skip tokenization.

A folder holds ``words.json`` (the distinct words, and the training text's case of them:
``models.casing``, counted here where the words are lower-cased) and, per split (``train``, and ``valid``
when a validation file was given), ``SPLIT.ids`` (int32 word numbers, sentence after sentence)
and ``SPLIT.offsets`` (int64, where each sentence starts, and the end). ``encode`` turns a split
into vocabulary ids with SENTENCE_START and SENTENCE_END, cached beside it per vocabulary.
"""
from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.casing import SurfaceCounts, count_surface_forms, majority_forms
from models.text import TRUSTED_TEXT_WORD_TOKENIZER, surface_sentences
from models.vocabulary import Vocabulary
from training.corpus import ParagraphSource
from training.sentences import EncodedSentences

log = logging.getLogger(__name__)

# part of every cache key: raise it whenever tokenization or the folder's layout changes
CACHE_FORMAT = 2
CHUNK_CHARS = 1 << 18  # text a worker tokenizes at a time
PROGRESS_SECONDS = 5.0


@dataclass
class TokenizedSplit:
    ids: np.ndarray  # int32 word numbers (indices into TokenizedCorpus.words), memory-mapped
    offsets: np.ndarray  # int64, len(sentences) + 1

    def __len__(self) -> int:
        return self.offsets.size - 1

    def take(self, first: int, last: int) -> "TokenizedSplit":
        """Sentences first .. last - 1 (views, no copy)."""
        start, end = int(self.offsets[first]), int(self.offsets[last])
        return TokenizedSplit(self.ids[start:end], self.offsets[first : last + 1] - start)


@dataclass
class TokenizedCorpus:
    folder: Path
    words: list[str]
    train: TokenizedSplit
    valid: TokenizedSplit | None  # None: no validation file, held out of the training text later
    sentences_cut: int  # sentences over max_sentence_words, cut into pieces
    built: bool  # tokenized by this call, not found in the cache
    casing: dict[str, str]  # the training text's case of words (models.casing.majority_forms)

    def word_counts(self, split: TokenizedSplit) -> dict[str, int]:
        counts = np.bincount(split.ids, minlength=len(self.words))
        return {w: int(c) for w, c in zip(self.words, counts) if c}


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def cache_key(train: ParagraphSource, valid: ParagraphSource | None, max_sentence_words: int | None) -> str:
    """SHA-256 of what the tokens depend on: the source files' bytes and the settings."""
    described = {
        "format": CACHE_FORMAT,
        "max_sentence_words": max_sentence_words,
        "train": [file_digest(f) for f in train.files],
        "valid": None if valid is None else [file_digest(f) for f in valid.files],
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def tokenized(
    train: ParagraphSource, valid: ParagraphSource | None, cache_dir: Path, max_sentence_words: int | None, workers: int,
) -> TokenizedCorpus:
    """The cached tokens of these sources, tokenizing them first if no finished folder has them."""
    folder = Path(cache_dir) / cache_key(train, valid, max_sentence_words)[:32]
    built = not (folder / "words.json").is_file()
    if built:
        _build(folder, train, valid, max_sentence_words, workers)
    else:
        log.debug("tokens read from the cache %s", folder)
    meta = json.loads((folder / "words.json").read_text(encoding="utf-8"))
    splits = {name: TokenizedSplit(_open(folder / f"{name}.ids", np.int32), _open(folder / f"{name}.offsets", np.int64))
              for name in meta["splits"]}
    return TokenizedCorpus(folder, meta["words"], splits["train"], splits.get("valid"), meta["sentences_cut"], built,
                           meta["casing"])


def _open(path: Path, dtype) -> np.ndarray:
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r")


# ------------------------------------------------------------------------ building
def _chunks(paragraphs: Iterable[str]) -> Iterator[list[str]]:
    """Paragraphs grouped into chunks of about CHUNK_CHARS characters."""
    chunk: list[str] = []
    size = 0
    for paragraph in paragraphs:
        chunk.append(paragraph)
        size += len(paragraph)
        if size >= CHUNK_CHARS:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


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


def tokenize_chunk(job: tuple[list[str], int | None]) -> tuple[list[str], np.ndarray, np.ndarray, int, int, SurfaceCounts]:
    """In a worker: (the chunk's distinct words, each token as an index into them, each sentence's
    length, sentences cut, characters read, the words' surface forms counted)."""
    paragraphs, max_words = job
    surface = surface_sentences(paragraphs, TRUSTED_TEXT_WORD_TOKENIZER)
    forms = count_surface_forms(surface)
    sentences, cut = split_long([[w.lower() for w in s] for s in surface], max_words)
    local: dict[str, int] = {}
    ids = np.fromiter((local.setdefault(w, len(local)) for s in sentences for w in s), dtype=np.int32)
    lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
    return list(local), ids, lengths, cut, sum(len(p) for p in paragraphs), forms


class _Writer:
    """Appends chunks of one split to its files, numbering words across the whole corpus."""

    def __init__(self, folder: Path, name: str, numbers: dict[str, int]):
        self.ids = open(folder / f"{name}.ids", "wb")
        self.offsets = open(folder / f"{name}.offsets", "wb")
        self.offsets.write(np.zeros(1, dtype=np.int64).tobytes())
        self.numbers = numbers
        self.tokens = 0
        self.sentences = 0

    def add(self, words: list[str], ids: np.ndarray, lengths: np.ndarray) -> None:
        lookup = np.array([self.numbers.setdefault(w, len(self.numbers)) for w in words], dtype=np.int32)
        self.ids.write(lookup[ids].tobytes() if ids.size else b"")
        self.offsets.write((self.tokens + np.cumsum(lengths)).astype(np.int64).tobytes())
        self.tokens += int(ids.size)
        self.sentences += int(lengths.size)

    def close(self) -> None:
        self.ids.close()
        self.offsets.close()


def _build(folder: Path, train: ParagraphSource, valid: ParagraphSource | None, max_words: int | None, workers: int) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        numbers: dict[str, int] = {}
        cut = 0
        training_forms = SurfaceCounts()
        splits = [("train", train)] + ([("valid", valid)] if valid is not None else [])
        total_chars = sum(f.stat().st_size for _, source in splits for f in source.files)
        progress = _Progress(total_chars)
        with _pool(workers) as pool:
            for name, source in splits:
                writer = _Writer(scratch, name, numbers)
                jobs = ((chunk, max_words) for chunk in _chunks(source.paragraphs()))
                for words, ids, lengths, chunk_cut, chars, forms in _ordered_map(pool, jobs, workers):
                    writer.add(words, ids, lengths)
                    cut += chunk_cut
                    if name == "train":
                        training_forms.update(forms)
                    progress.update(chars, ids.size)
                writer.close()
        progress.done()
        meta = {"words": list(numbers), "splits": [name for name, _ in splits], "sentences_cut": cut,
                "casing": majority_forms(training_forms)}
        (scratch / "words.json").write_text(json.dumps(meta), encoding="utf-8")
        try:
            scratch.rename(folder)
        except OSError:  # another run finished the same folder first: theirs is as good
            shutil.rmtree(scratch, ignore_errors=True)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


class _pool:
    """A worker pool, or none for a single worker (no processes to start)."""

    def __init__(self, workers: int):
        self.workers = workers
        self.pool = None

    def __enter__(self):
        if self.workers > 1:
            self.pool = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn").Pool(self.workers)
        return self.pool

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()


def _ordered_map(pool, jobs: Iterator, workers: int) -> Iterator:
    """tokenize_chunk over the jobs, results in order, at most two chunks a worker in flight (so
    the reading never runs ahead of the tokenizing by more than that)."""
    if pool is None:
        yield from map(tokenize_chunk, jobs)
        return
    pending: deque = deque()
    for job in jobs:
        pending.append(pool.apply_async(tokenize_chunk, (job,)))
        if len(pending) >= 2 * workers:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


class _Progress:
    """Progress lines on stderr (through logging) while tokenizing."""

    def __init__(self, total_chars: int):
        self.total = max(total_chars, 1)
        self.chars = 0
        self.words = 0
        self.started = self.last = time.monotonic()

    def update(self, chars: int, words: int) -> None:
        self.chars += chars
        self.words += words
        now = time.monotonic()
        if now - self.last >= PROGRESS_SECONDS:
            self.last = now
            rate = self.words / max(now - self.started, 1e-9)
            log.info("tokenizing: about %3.0f%% | %s words | %s words/s", min(100.0, 100 * self.chars / self.total),
                     f"{self.words:,}", f"{rate:,.0f}")

    def done(self) -> None:
        seconds = time.monotonic() - self.started
        quick = seconds < PROGRESS_SECONDS  # a small corpus: no lines at all, so an error stays one line
        log.log(logging.DEBUG if quick else logging.INFO, "tokenized %s words in %.1f s (%s words/s)",
                f"{self.words:,}", seconds, f"{self.words / max(seconds, 1e-9):,.0f}")


# ------------------------------------------------------------------------ encoding
def encode(corpus: TokenizedCorpus, split: TokenizedSplit, vocab: Vocabulary, name: str) -> EncodedSentences:
    """The split's sentences as vocabulary ids with SENTENCE_START and SENTENCE_END, memory-mapped
    from a file cached per vocabulary beside the tokens."""
    digest = hashlib.sha256("\n".join(vocab.words).encode()).hexdigest()[:16]
    path = corpus.folder / f"{name}.{digest}.encoded"
    n = len(split)
    offsets = split.offsets + 2 * np.arange(n + 1, dtype=np.int64)
    if not path.is_file():
        lookup = np.array([vocab.index.get(w, vocab.unknown_id) for w in corpus.words], dtype=np.int32)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        out = np.memmap(tmp, dtype=np.int32, mode="w+", shape=(max(int(offsets[-1]), 1),))
        step = 1 << 16
        for first in range(0, n, step):
            last = min(first + step, n)
            lengths = np.diff(split.offsets[first : last + 1])
            ids = lookup[split.ids[split.offsets[first] : split.offsets[last]]]
            sentence = np.repeat(np.arange(first, last, dtype=np.int64), lengths)
            out[np.arange(split.offsets[first], split.offsets[last]) + 2 * sentence + 1] = ids
            out[offsets[first:last]] = vocab.start_id
            out[offsets[first + 1 : last + 1] - 1] = vocab.end_id
        out.flush()
        del out
        os.replace(tmp, path)
    tokens = np.memmap(path, dtype=np.int32, mode="r")[: int(offsets[-1])] if offsets[-1] else np.zeros(0, np.int32)
    return EncodedSentences(tokens, offsets)

"""The sentences every speed contender trains on: the Austen corpus if unpacked, else synthetic.

Shared by ``bench/train_speed.py`` and ``bench/torch_speed.py`` so both time the same batches.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.batching import Batch, length_buckets, make_batch, sentence_pairs
from models.vocabulary import SPECIAL_TOKENS, Vocabulary
from training.corpus import CorpusError, load_corpus
from training.dataset import build_dataset


@dataclass
class BenchData:
    name: str
    vocab: Vocabulary
    sentences: list[list[int]]
    inputs: list[list[int]]
    targets: list[list[int]]
    batches: list[Batch]
    counts: list[int]

    @property
    def words(self) -> int:
        return sum(b.n_tokens for b in self.batches)

    @property
    def all_targets(self) -> np.ndarray:
        return np.concatenate([np.asarray(y) for y in self.targets])


def synthetic_sentences(count: int, vocab_size: int, rng: np.random.Generator) -> list[list[int]]:
    """Zipf-distributed words, long-tailed lengths (mean about 27, like the Austen corpus)."""
    lengths = np.minimum(rng.geometric(1 / 25, size=count) + 2, 200)
    ranks = np.arange(3, vocab_size)
    probs = 1.0 / (ranks - 2)
    probs /= probs.sum()
    return [[1, *rng.choice(ranks, size=n - 2, p=probs).tolist(), 2] for n in lengths]


def load_bench_data(data_dir: str | Path, vocab_size: int, count: int, batch_size: int) -> BenchData:
    """``count`` training sentences in length-bucketed batches (the trainer's batching, seed 0)."""
    try:
        dataset = build_dataset(load_corpus("austen", None, Path(data_dir)), vocab_size)
        name, vocab, counts = "austen", dataset.vocab, dataset.vocab.counts
        rng = np.random.default_rng(0)
        sentences = [dataset.train[i] for i in rng.permutation(len(dataset.train))[:count]]
    except CorpusError:
        name = "synthetic-zipf"
        vocab = Vocabulary([*SPECIAL_TOKENS, *(f"w{i}" for i in range(vocab_size - 3))])
        sentences = synthetic_sentences(count, vocab_size, np.random.default_rng(0))
        counts = np.bincount(np.concatenate(sentences), minlength=vocab_size).tolist()
    inputs, targets = sentence_pairs(sentences)
    order = length_buckets([len(x) for x in inputs], batch_size, np.random.default_rng(0))
    batches = [make_batch([inputs[i] for i in b], [targets[i] for i in b]) for b in order]
    return BenchData(name, vocab, sentences, inputs, targets, batches, list(counts))

"""A small deterministic corpus with real structure, for training tests that take seconds."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np

SUBJECTS = ["the cat", "a dog", "my sister", "the old man", "her friend", "mr. darcy"]
VERBS = ["saw", "liked", "walked with", "spoke to", "waited for", "laughed at"]
OBJECTS = ["the garden", "a letter", "the house", "his horse", "the party", "our neighbour"]


def random_id_corpus(sentences: int, seed: int, vocab_size: int, start_id: int = 1) -> list[list[int]]:
    """Encoded sentences of up to 8 words drawn with Zipf-like frequencies, for n-gram tests; SENTENCE_END
    (2) may also come anywhere inside, which the counting must not care about."""
    rng = np.random.default_rng(seed)
    words = np.arange(2, vocab_size)
    p = 1.0 / (words - 1.0)
    p /= p.sum()
    return [[start_id, *rng.choice(words, size=int(rng.integers(0, 9)), p=p).tolist(), 2] for _ in range(sentences)]


def write_toy_corpus(path: Path, sentences: int = 400, seed: int = 0) -> Path:
    """Paragraphs of template sentences: learnable, so the loss must fall well below log(C)."""
    rng = random.Random(seed)
    paragraphs = []
    for _ in range(sentences // 4):
        paragraphs.append(" ".join(
            f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(OBJECTS)}." for _ in range(4)
        ))
    path.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    return path


def write_toy_model(folder: Path):
    """The toy corpus, an untrained RNN (hidden 8) saved with its 40-word vocabulary, and the
    dataset: what the command-line tests of evaluate.py and diagnose.py run on."""
    from models.model_file import save_model
    from models.rnn import RNN
    from training.corpus import load_corpus
    from training.dataset import build_dataset

    corpus = write_toy_corpus(folder / "toy.txt")
    dataset = build_dataset(load_corpus(str(corpus)), 40)
    path = folder / "toy.joblib"
    save_model(path, RNN(len(dataset.vocab), 8, seed=1), dataset.vocab, {"corpus": str(corpus)})
    return corpus, path, dataset

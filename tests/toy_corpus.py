"""A small deterministic corpus with real structure, for training tests that take seconds."""
from __future__ import annotations

import random
from pathlib import Path

SUBJECTS = ["the cat", "a dog", "my sister", "the old man", "her friend", "mr. darcy"]
VERBS = ["saw", "liked", "walked with", "spoke to", "waited for", "laughed at"]
OBJECTS = ["the garden", "a letter", "the house", "his horse", "the party", "our neighbour"]


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

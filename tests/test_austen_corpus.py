"""The default corpus as `make test` fetches it: the right novels, cleaned, split as documented."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from training.corpus import AUSTEN_TRAIN, AUSTEN_VALID, austen_dir, load_austen, read_austen_books
from training.dataset import build_dataset

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(scope="module")
def corpus():
    if not (austen_dir(DATA) / "Rdata.rdx").is_file():
        pytest.fail("the default corpus is missing: run `make corpus` (make test does it first)")
    return load_austen(DATA)


def test_all_six_novels_are_read():
    books = read_austen_books(austen_dir(DATA))
    assert set(AUSTEN_TRAIN + AUSTEN_VALID) <= set(books)
    assert books["persuasion"][0] == "Persuasion"


def test_headings_and_italics_are_gone(corpus):
    for paragraph in corpus.train + corpus.valid:
        assert "_" not in paragraph
        assert not re.fullmatch(r"(chapter|volume)\s+\w+\.?", paragraph, re.IGNORECASE)
    assert corpus.valid[0].startswith("Sir Walter Elliot, of Kellynch Hall")


def test_the_split_matches_the_documented_figures(corpus):
    dataset = build_dataset(corpus, 8000)
    assert len(dataset.vocab) == 8000
    assert (len(dataset.train), dataset.train_words) == (29266, 784002)
    assert (len(dataset.valid), dataset.valid_words) == (3720, 101607)
    unknown = sum(t == dataset.vocab.unknown_id for s in dataset.valid for t in s[1:])
    assert unknown / dataset.valid_words == pytest.approx(0.0347, abs=0.0005)

"""The token cache: the same sentences as tokenizing in memory, found again, rebuilt when its inputs change."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from models.text import split_paragraphs
from tests.toy_corpus import write_toy_corpus
from training import token_cache
from training.corpus import RawCorpus, paragraph_stream, read_paragraphs, without_controls
from training.dataset import VALIDATION_MAX_WORDS, build_dataset, held_out_count, load_dataset


def same(a, b) -> None:
    assert a.vocab.words == b.vocab.words and a.vocab.counts == b.vocab.counts
    for x, y in ((a.train, b.train), (a.valid, b.valid)):
        np.testing.assert_array_equal(x.tokens, y.tokens)
        np.testing.assert_array_equal(x.offsets, y.offsets)


@pytest.fixture
def toy(tmp_path):
    return write_toy_corpus(tmp_path / "toy.txt", sentences=300)


@pytest.mark.parametrize("workers", [1, 2])
def test_cached_dataset_equals_the_in_memory_one(toy, tmp_path, workers, monkeypatch):
    monkeypatch.setattr(token_cache, "CHUNK_CHARS", 500)  # many chunks, in order
    valid = write_toy_corpus(tmp_path / "valid.txt", sentences=40, seed=5)
    for validation in (None, str(valid)):
        raw = RawCorpus(str(toy), read_paragraphs(toy), read_paragraphs(valid) if validation else [])
        same(load_dataset(str(toy), validation, tmp_path, 30, workers=workers), build_dataset(raw, 30))


def test_csv_and_long_sentences_go_through_the_cache_alike(tmp_path, caplog):
    path = tmp_path / "c.csv"
    path.write_text('text\n"One two three four five six seven. Eight nine."\nTen eleven twelve.\n"a\x00b c, d"\n' * 5,
                    encoding="utf-8")
    raw = RawCorpus(str(path), read_paragraphs(path), [])
    with caplog.at_level(logging.INFO):
        cached = load_dataset(str(path), None, tmp_path, 20, max_sentence_words=3)
    same(cached, build_dataset(raw, 20, max_sentence_words=3))
    assert "; 15 sentences over 3 words cut" in caplog.text


def test_a_second_run_reads_the_cache_without_tokenizing(toy, tmp_path, monkeypatch):
    first = load_dataset(str(toy), None, tmp_path, 30)

    def no_tokenizing(job):
        raise AssertionError("tokenized again")

    monkeypatch.setattr(token_cache, "tokenize_chunk", no_tokenizing)
    same(load_dataset(str(toy), None, tmp_path, 30), first)
    assert isinstance(load_dataset(str(toy), None, tmp_path, 30).train.tokens, np.memmap)
    other_vocabulary = load_dataset(str(toy), None, tmp_path, 20)  # re-encoded from the cached tokens
    assert len(other_vocabulary.vocab) == 20


def test_a_changed_file_or_setting_is_tokenized_again(toy, tmp_path):
    folders = lambda: sorted(p.name for p in (tmp_path / "token-cache").iterdir())  # noqa: E731
    before = load_dataset(str(toy), None, tmp_path, 30)
    assert len(folders()) == 1
    load_dataset(str(toy), None, tmp_path, 30, max_sentence_words=4)
    assert len(folders()) == 2
    with open(toy, "a", encoding="utf-8") as handle:
        handle.write("\nA zebra arrived.\n")
    after = load_dataset(str(toy), None, tmp_path, 30)
    assert len(folders()) == 3  # "a zebra arrived ." and SENTENCE_END: five more tokens
    assert after.train_words + after.valid_words == before.train_words + before.valid_words + 5
    raw = RawCorpus(str(toy), read_paragraphs(toy), [])
    same(after, build_dataset(raw, 30))


def test_progress_is_shown_while_tokenizing(toy, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(token_cache, "PROGRESS_SECONDS", 0.0)
    monkeypatch.setattr(token_cache, "CHUNK_CHARS", 2000)
    with caplog.at_level(logging.INFO, logger="training.token_cache"):
        load_dataset(str(toy), None, tmp_path, 30)
    assert "tokenizing: about" in caplog.text and "words/s" in caplog.text


def test_streamed_paragraphs_are_the_whole_file_paragraphs(tmp_path):
    text = ("First line\r\nsecond  line\n \t\n\nNext\x0c block\x00 here\n\x0c\nLast one\nends\n\n\n"
            "  spaced   out  \n")
    path = tmp_path / "t.txt"
    path.write_bytes(text.encode("utf-8"))
    expected = split_paragraphs(without_controls(path.read_text(encoding="utf-8")))
    assert list(paragraph_stream(path)) == expected and len(expected) == 4


def test_the_held_out_validation_is_a_tenth_but_never_huge():
    assert held_out_count([10] * 100) == 10
    assert held_out_count([10] * 3) == 1
    assert held_out_count([1000] * 10_000) == VALIDATION_MAX_WORDS // 1000

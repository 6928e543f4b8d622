"""Counting n-grams in sorted, merged and spilled chunks, and the Kneser-Ney table fitted from the
counts, against the Counter-based reference in training.kneser_ney."""
from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import pytest

from tests.toy_corpus import random_id_corpus
from training.kneser_ney import KneserNey, kn_counts
from training.ngram_counts import GramCounts, count_ngrams, flat_tokens
from training.ngram_fit import fit_table, kn_counts_of

VOCAB = 30
S = 1


def spelled_out(levels: list[GramCounts]) -> list[list[tuple[int, ...]]]:
    """Each level's chained keys spelled out as word tuples."""
    spelled: list[list[tuple[int, ...]]] = []
    for k, level in enumerate(levels):
        suffix, first = np.divmod(np.asarray(level.keys), VOCAB)
        spelled.append([(int(w),) + (spelled[k - 1][int(s)] if k else ()) for s, w in zip(suffix, first)])
    return spelled


def as_tuples(levels: list[GramCounts], values: list[np.ndarray]) -> list[Counter]:
    """Each level's n-grams as word tuples, with the given value per n-gram (0s left out)."""
    return [Counter({g: int(v) for g, v in zip(grams, np.asarray(value)) if v})
            for grams, value in zip(spelled_out(levels), values)]


def raw_counts(corpus: list[list[int]], order: int) -> list[Counter]:
    return [Counter(tuple(s[i : i + k]) for s in corpus for i in range(len(s) - k + 1)) for k in range(1, order + 1)]


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_chunked_spilled_counting_equals_counting_at_once(order, tmp_path, caplog):
    corpus = random_id_corpus(300, order, VOCAB)
    tokens = flat_tokens(corpus)
    at_once = count_ngrams(tokens, order, VOCAB, S, chunk_tokens=tokens.size)
    with caplog.at_level(logging.DEBUG, logger="training.ngram_counts"):
        chunked = count_ngrams(tokens, order, VOCAB, S, chunk_tokens=7, memory_bytes=200, folder=tmp_path)
    assert any("runs spilled" in r.message and " 0 runs" not in r.message for r in caplog.records)
    # the result is on disk, the rank files and spilled runs are gone
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"order{k}.{name}" for k in range(1, order + 1) for name in ("keys", "counts", "prefixes", "last_words"))
    for a, b in zip(at_once, chunked):
        assert a.keys.path is None and b.keys.path is not None
        for name in ("keys", "counts", "prefixes", "last_words"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert as_tuples(chunked, [level.counts for level in chunked]) == raw_counts(corpus, order)
    grams = spelled_out(chunked)
    for k, level in enumerate(chunked):  # each n-gram's prefix (a rank one order down) and last word
        prefixes = grams[k - 1] if k else [()]
        assert [prefixes[p] for p in level.prefixes.load()] == [g[:-1] for g in grams[k]]
        assert level.last_words.load().tolist() == [g[-1] for g in grams[k]]


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_kneser_ney_counts_equal_the_reference(order):
    corpus = random_id_corpus(300, 10 + order, VOCAB)
    levels = count_ngrams(flat_tokens(corpus), order, VOCAB, S, chunk_tokens=50)
    assert as_tuples(levels, kn_counts_of(levels, VOCAB, S)) == kn_counts(corpus, order, S)


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_unpruned_table_is_the_reference_table_bit_for_bit(order):
    corpus = random_id_corpus(400, 20 + order, VOCAB)
    reference = KneserNey.fit(corpus, order, VOCAB)
    table, discounts = fit_table(count_ngrams(flat_tokens(corpus), order, VOCAB, S, chunk_tokens=64), VOCAB, S)
    assert discounts == reference.discounts
    for ours, theirs in zip(table.levels, reference.table().levels):
        for name, value in theirs.to_payload().items():
            np.testing.assert_array_equal(getattr(ours, name), value, err_msg=name)


def test_words_outside_the_vocabulary_or_a_missing_start_are_refused():
    with pytest.raises(ValueError, match="outside the vocabulary"):
        count_ngrams(flat_tokens([[S, 5, VOCAB, 2]]), 3, VOCAB, S)
    with pytest.raises(ValueError, match="SENTENCE_START"):
        count_ngrams(np.array([4, S, 5, 2], dtype=np.int32), 3, VOCAB, S)


@pytest.mark.parametrize("thresholds", [None, (0, 1, 1, 2)])
def test_fit_from_disk_in_small_chunks_equals_the_fit_at_once(thresholds, tmp_path):
    corpus = random_id_corpus(400, 33, VOCAB)
    tokens = flat_tokens(corpus)
    at_once, estimated = fit_table(count_ngrams(tokens, 4, VOCAB, S, chunk_tokens=tokens.size), VOCAB, S, thresholds)
    on_disk = count_ngrams(tokens, 4, VOCAB, S, chunk_tokens=13, memory_bytes=500, folder=tmp_path)
    chunked, discounts = fit_table(on_disk, VOCAB, S, thresholds, chunk=5)
    assert discounts == estimated
    for ours, theirs in zip(chunked.levels, at_once.levels):
        for name, value in theirs.to_payload().items():
            if name == "backoff" and thresholds:  # the pruned mass is summed chunk by chunk: the last bits may differ
                np.testing.assert_allclose(ours.backoff, value, rtol=1e-13)
            else:
                np.testing.assert_array_equal(getattr(ours, name), value, err_msg=name)

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


def as_tuples(levels: list[GramCounts], values: list[np.ndarray]) -> list[Counter]:
    """Each level's chained keys spelled out as word tuples, with the given value per n-gram (0s left out)."""
    spelled: list[list[tuple[int, ...]]] = []
    for k, level in enumerate(levels):
        suffix, first = np.divmod(level.keys, VOCAB)
        spelled.append([(int(w),) + (spelled[k - 1][int(s)] if k else ()) for s, w in zip(suffix, first)])
    return [Counter({g: int(v) for g, v in zip(grams, value) if v}) for grams, value in zip(spelled, values)]


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
    assert list(tmp_path.iterdir()) == []  # the scratch files are gone
    for a, b in zip(at_once, chunked):
        np.testing.assert_array_equal(a.keys, b.keys)
        np.testing.assert_array_equal(a.counts, b.counts)
    assert as_tuples(chunked, [level.counts for level in chunked]) == raw_counts(corpus, order)


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

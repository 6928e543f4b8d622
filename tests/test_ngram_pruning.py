"""Count cut-offs: the array fit against the dict reference, and what pruning keeps and gives."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tests.toy_corpus import random_id_corpus
from training.kneser_ney import KneserNey
from training.ngram_counts import count_ngrams, flat_tokens
from training.ngram_fit import fit_table, parse_thresholds, thresholds_for

VOCAB = 30
S = 1


def fitted(corpus, order, thresholds):
    return fit_table(count_ngrams(flat_tokens(corpus), order, VOCAB, S, chunk_tokens=100), VOCAB, S, thresholds)[0]


@pytest.mark.parametrize("order, thresholds", [(2, (0, 1)), (3, (0, 1, 1)), (4, (0, 0, 1, 2)), (5, (0, 1, 1, 1, 1))])
def test_pruned_table_matches_the_pruned_reference(order, thresholds):
    corpus = random_id_corpus(500, order, VOCAB)
    reference = KneserNey.fit(corpus, order, VOCAB, thresholds=thresholds).table()
    table = fitted(corpus, order, thresholds)
    for ours, theirs in zip(table.levels, reference.levels):
        for name, value in theirs.to_payload().items():
            if name == "backoff":  # the dropped mass is summed in another order: the last bits may differ
                np.testing.assert_allclose(ours.backoff, value, rtol=1e-13)
            else:
                np.testing.assert_array_equal(getattr(ours, name), value, err_msg=name)
    unpruned = fitted(corpus, order, None)
    assert sum(level.words.size for level in table.levels) < 0.8 * sum(level.words.size for level in unpruned.levels)


def test_pruning_keeps_frequent_ngrams_and_the_suffixes_of_kept_ones():
    # "a b c" three times and "d b c" once: at (0, 1, 1) the trigram a b c and the bigram b c stay;
    # d b c goes, and so would the bigram d b (seen once) and b c's sibling b e (seen once)
    a, b, c, d, e, end = 3, 4, 5, 6, 7, 2
    corpus = [[S, a, b, c, end]] * 3 + [[S, d, b, c, end], [S, b, e, end]]
    model = KneserNey.fit(corpus, 3, 10, thresholds=(0, 1, 1))
    kept = [set(level) for level in model._discounted]
    assert (a, b, c) in kept[2] and (d, b, c) not in kept[2]
    assert (b, c) in kept[1] and (d, b) not in kept[1] and (b, e) not in kept[1]
    assert (S, d) not in kept[1]  # the raw count decides, at sentence openings too
    # the unpruned model predicts c after d b from that very trigram; the pruned one backs off to b c
    full = KneserNey.fit(corpus, 3, 10)
    assert model.prob([d, b], c) != full.prob([d, b], c)
    assert model.prob([d, b], c) == pytest.approx(model.prob([b], c), rel=1e-12)


@pytest.mark.parametrize("thresholds", [(0, 1, 1, 1), (0, 0, 2, 3)])
def test_pruned_probabilities_sum_to_one(thresholds):
    corpus = random_id_corpus(500, 7, VOCAB)
    table = fitted(corpus, 4, thresholds)
    histories = [[], [S], corpus[0][:3], corpus[1][:4], [9, 9, 9], [S, 3], [3, 3, 4]]
    for row in table.next_word_probs_batch(histories):
        assert math.fsum(row) == pytest.approx(1.0, abs=1e-12) and row[S] == 0.0


def test_zero_cut_offs_change_nothing():
    corpus = random_id_corpus(300, 3, VOCAB)
    pruned, plain = fitted(corpus, 3, (0, 0, 0)), fitted(corpus, 3, None)
    for ours, theirs in zip(pruned.levels, plain.levels):
        for name, value in theirs.to_payload().items():
            np.testing.assert_array_equal(getattr(ours, name), value)


def test_cut_off_flag():
    assert parse_thresholds("0,0,1") == (0, 0, 1)
    assert thresholds_for((0, 0, 1), 5) == [0, 0, 1, 1, 1] and thresholds_for((0, 1, 2), 2) == [0, 1]
    for bad, why in [("1,1", "unigrams"), ("0,2,1", "must not fall"), ("0,x", "whole numbers")]:
        with pytest.raises(ValueError, match=why):
            parse_thresholds(bad)

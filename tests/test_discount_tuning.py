"""Discounts chosen for the mixture on the development split: the fast scoring against the table,
the table under any discounts against the dict reference, and what the search keeps."""
from __future__ import annotations

import numpy as np
import pytest

from tests.toy_corpus import random_id_corpus
from training.discount_tuning import TokenCounts, moved, tune_discounts
from training.interpolation import choose_weight
from training.kneser_ney import Discounts, KneserNey
from training.ngram_counts import count_ngrams, flat_tokens
from training.ngram_fit import (KEEP_ALL_UP_TO_TOKENS, LARGE_CORPUS_CUT_OFFS, arrange_counts, default_cut_offs,
                                thresholds_for)

VOCAB = 30
S = 1


def arranged(corpus, order, thresholds=None):
    return arrange_counts(count_ngrams(flat_tokens(corpus), order, VOCAB, S, chunk_tokens=100), VOCAB, S, thresholds)


def random_discounts(rng, order):
    return [Discounts(rng.uniform(0.05, 1), rng.uniform(0.05, 2), rng.uniform(0.05, 3)) for _ in range(order)]


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_the_table_under_any_discounts_is_the_reference_table_bit_for_bit(order):
    corpus = random_id_corpus(400, 30 + order, VOCAB)
    discounts = random_discounts(np.random.default_rng(order), order)
    reference = KneserNey.fit(corpus, order, VOCAB, discounts=discounts).table()
    for ours, theirs in zip(arranged(corpus, order).table(discounts).levels, reference.levels):
        for name, value in theirs.to_payload().items():
            np.testing.assert_array_equal(getattr(ours, name), value, err_msg=name)


@pytest.mark.parametrize("order, thresholds", [(1, None), (2, None), (3, (0, 1, 1)), (5, None), (5, (0, 0, 1, 1, 2))])
def test_development_scoring_gives_the_tables_probabilities(order, thresholds):
    corpus = random_id_corpus(600, order, VOCAB)
    counts = arranged(corpus[:500], order, thresholds)
    development = corpus[500:] + [[S, 2], [S, VOCAB - 1, VOCAB - 1, VOCAB - 1, VOCAB - 1, VOCAB - 1, 2]]
    gathered = TokenCounts.gather(counts, development)
    rng = np.random.default_rng(order)
    for discounts in (counts.estimated, random_discounts(rng, order), random_discounts(rng, order)):
        table = counts.table(discounts)
        expected = np.concatenate([table.token_probs(s) for s in development])
        np.testing.assert_allclose(gathered.probs(discounts), expected, rtol=1e-14, atol=0)


def test_moved_discounts_stay_within_their_counts():
    values = np.array([[0.5, 1.0, 1.5], [0.8, 1.2, 1.6]])
    np.testing.assert_array_equal(moved(values, (0, 1, 2), 0.5), [[0.25, 0.5, 0.75], [0.8, 1.2, 1.6]])
    np.testing.assert_array_equal(moved(values, (3, 4, 5), 2.0), [[0.5, 1.0, 1.5], [1.0, 2.0, 3.0]])
    np.testing.assert_allclose(moved(values, (4,), 1.5), [[0.5, 1.0, 1.5], [0.8, 1.8, 1.6]], rtol=1e-15)


def mixture_log_likelihood(table, sentences, rnn, weight, rows=slice(None)):
    ngram = np.concatenate([table.token_probs(s) for s in sentences])
    return float(np.log(weight * rnn + (1 - weight) * ngram)[rows].sum())


def test_the_search_keeps_only_what_makes_both_halves_likelier():
    corpus = random_id_corpus(1500, 7, VOCAB)
    train, development = corpus[:1400], corpus[1300:]  # half the development sentences repeat training ones
    counts = arranged(train, 3)
    tokens = sum(len(s) - 1 for s in development)
    rnn = np.full(tokens, 1.0 / (VOCAB - 1))  # a uniform "RNN": the n-gram model's exact counts are what helps
    choice = tune_discounts(counts, development, rnn, choose_weight)
    assert choice.discounts != counts.estimated
    top, estimated_top = choice.discounts[-1], counts.estimated[-1]
    assert top.one < estimated_top.one  # repeated sentences: the trigrams seen once deserve more trust
    table, estimated = counts.table(choice.discounts), counts.table()
    assert mixture_log_likelihood(table, development, rnn, choice.weight) == pytest.approx(choice.log_likelihood)
    assert choice.weight == choose_weight(rnn, np.concatenate([table.token_probs(s) for s in development]))
    halves = np.repeat(np.arange(len(development)) % 2 == 0, [len(s) - 1 for s in development])
    for rows in (halves, ~halves):
        before_weight = choose_weight(rnn, np.concatenate([estimated.token_probs(s) for s in development]))
        assert (mixture_log_likelihood(table, development, rnn, choice.weight, rows)
                > mixture_log_likelihood(estimated, development, rnn, before_weight, rows))


def test_nothing_to_gain_keeps_the_estimated_discounts():
    corpus = random_id_corpus(800, 3, VOCAB)
    counts = arranged(corpus[:700], 2)
    development = corpus[700:]
    tokens = sum(len(s) - 1 for s in development)
    choice = tune_discounts(counts, development, np.ones(tokens), choose_weight)  # an RNN that is always right
    assert choice.discounts == counts.estimated and choice.weight == 1.0
    with pytest.raises(ValueError, match="RNN probabilities"):
        tune_discounts(counts, development, np.ones(tokens + 1), choose_weight)


def test_default_cut_offs_keep_a_small_corpus_whole():
    assert default_cut_offs(KEEP_ALL_UP_TO_TOKENS) == (0,)
    assert default_cut_offs(KEEP_ALL_UP_TO_TOKENS + 1) == LARGE_CORPUS_CUT_OFFS
    assert thresholds_for(default_cut_offs(10), 5) == [0, 0, 0, 0, 0]

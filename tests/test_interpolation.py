"""The mixture weight: chosen on a development split carved from the training text."""
from __future__ import annotations

import numpy as np
import pytest

from models.rnn import RNN
from models.vocabulary import Vocabulary
from tests.toy_corpus import write_toy_corpus
from training.corpus import load_corpus
from training.dataset import DEV_MAX_WORDS, build_dataset, development_split
from training.interpolation import WEIGHT_STEP, choose_weight, interpolate
from training.kneser_ney import Discounts
from training.ngram_counts import count_ngrams, flat_tokens
from training.ngram_fit import arrange_counts


def log_likelihood(weight: float, rnn: np.ndarray, ngram: np.ndarray) -> float:
    return float(np.log(weight * rnn + (1 - weight) * ngram).sum())


def test_the_better_model_everywhere_takes_all_or_almost_nothing():
    rng = np.random.default_rng(0)
    ngram = rng.uniform(0.01, 0.5, 1000)
    assert choose_weight(ngram * 1.5, ngram) == 1.0
    assert choose_weight(ngram / 1.5, ngram) == WEIGHT_STEP


def test_the_chosen_weight_is_where_the_likelihood_peaks():
    rng = np.random.default_rng(1)
    rnn, ngram = rng.uniform(0.001, 0.5, 5000), rng.uniform(0.001, 0.5, 5000)
    w = choose_weight(rnn, ngram)
    assert 0.1 < w < 0.9  # two models as good as each other on different tokens mix
    for other in (w - WEIGHT_STEP, w + WEIGHT_STEP, 0.5):
        assert log_likelihood(w, rnn, ngram) >= log_likelihood(other, rnn, ngram)
    # the derivative changes sign within a step of it
    slope = [np.sum((rnn - ngram) / (x * rnn + (1 - x) * ngram)) for x in (w - WEIGHT_STEP, w + WEIGHT_STEP)]
    assert slope[0] > 0 > slope[1]


def test_development_split_is_spread_over_the_text_and_held_out():
    train = [[1, i, 2] for i in range(1000)]
    kept, development = development_split(train)
    assert len(development) == 20 and len(kept) == 980
    assert sorted(tuple(s) for s in [*kept, *development]) == sorted(map(tuple, train))
    assert development[0][1] < 100 and development[-1][1] > 900
    many = [[1, 5, 6, 7, 2]] * 100_000  # 400k words: the split stays near DEV_MAX_WORDS
    assert sum(len(s) - 1 for s in development_split(many)[1]) <= DEV_MAX_WORDS
    kept, development = development_split([[1, 2], [1, 3, 2]])
    assert [s.tolist() for s in kept] == [[1, 2]] and [s.tolist() for s in development] == [[1, 3, 2]]


def test_a_weak_rnn_gets_a_small_weight(tmp_path):
    dataset = build_dataset(load_corpus(str(write_toy_corpus(tmp_path / "toy.txt")), None, tmp_path), 40)
    train, development = development_split(dataset.train)
    untrained = RNN(len(dataset.vocab), 8, seed=1)
    result = interpolate(untrained, train, dataset.valid, 3, None, (0,), development)
    figures = result.figures()
    assert figures["ngram_weight"] == figures["ngram_weight_choice"]["weight"] <= 0.05
    choice = figures["ngram_weight_choice"]
    assert choice["mixture_perplexity"] <= choice["estimated_discounts_mixture_perplexity"]
    assert result.val_loss < result.rnn_val_loss  # the mixture is far better than the weak RNN
    fixed = interpolate(untrained, train, dataset.valid, 3, 0.5, (0,), development)
    assert fixed.figures()["ngram_weight_choice"] is None and fixed.val_loss > result.val_loss


def test_the_kept_n_gram_model_is_counted_with_the_development_sentences(tmp_path):
    dataset = build_dataset(load_corpus(str(write_toy_corpus(tmp_path / "toy.txt")), None, tmp_path), 40)
    train, development = development_split(dataset.train)
    rnn = RNN(len(dataset.vocab), 8, seed=1)
    result = interpolate(rnn, train, dataset.valid, 3, None, (0,), development)
    discounts = [Discounts(*row) for row in result.figures()["ngram_weight_choice"]["discounts"]]
    everything = np.concatenate([flat_tokens(train), flat_tokens(development)])
    expected = arrange_counts(count_ngrams(everything, 3, len(dataset.vocab), Vocabulary.start_id),
                              len(dataset.vocab), Vocabulary.start_id)
    without = arrange_counts(count_ngrams(flat_tokens(train), 3, len(dataset.vocab), Vocabulary.start_id),
                             len(dataset.vocab), Vocabulary.start_id)
    kept = result.mixture.ngram.levels
    assert [level.total.sum() for level in expected.levels] != [level.total.sum() for level in without.levels]
    for ours, counts, theirs in zip(kept, expected.levels, expected.table(discounts).levels):
        np.testing.assert_array_equal(ours.words, theirs.words)
        np.testing.assert_allclose(1.0 / ours.inverse_total, counts.total, rtol=1e-12)  # the counts with them
        np.testing.assert_allclose(ours.discounted, theirs.discounted, atol=1e-3)  # the discounts as reported (4 digits)

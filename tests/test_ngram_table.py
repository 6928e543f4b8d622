"""The compact Kneser-Ney table against the fitted model it was built from, and the mixture."""
from __future__ import annotations

import numpy as np
import pytest

from models.mixture import NgramMixture
from models.ngram_table import NgramTable
from training.kneser_ney import KneserNey

VOCAB = 40


def random_sentences(count: int, seed: int = 1) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    # a skewed distribution, so many n-grams repeat and every discount level is exercised
    words = np.arange(3, VOCAB)
    p = 1.0 / (words - 2.0)
    p /= p.sum()
    return [[1, *rng.choice(words, size=int(rng.integers(1, 12)), p=p).tolist(), 2] for _ in range(count)]


@pytest.fixture(scope="module", params=[1, 2, 3, 5])
def fitted(request) -> tuple[KneserNey, NgramTable]:
    model = KneserNey.fit(random_sentences(400), request.param, VOCAB)
    return model, model.table()


def test_table_gives_the_fitted_probabilities(fitted):
    model, table = fitted
    for sentence in random_sentences(40, seed=2):
        for i in range(1, len(sentence)):
            assert table.prob(sentence[:i], sentence[i]) == pytest.approx(model.prob(sentence[:i], sentence[i]), rel=1e-12)


def test_next_word_probabilities_sum_to_one_and_match(fitted):
    model, table = fitted
    for sentence in random_sentences(10, seed=3):
        for i in range(1, len(sentence)):
            p = table.next_word_probs(sentence[:i])
            assert p.sum() == pytest.approx(1.0, abs=1e-12)
            assert p[1] == 0.0  # SENTENCE_START is never predicted
            np.testing.assert_allclose(p, [model.prob(sentence[:i], w) for w in range(VOCAB)], rtol=1e-12)


def test_payload_round_trip(fitted):
    _, table = fitted
    again = NgramTable.from_payload(table.to_payload())
    sentence = random_sentences(1, seed=4)[0]
    np.testing.assert_array_equal(again.token_probs(sentence), table.token_probs(sentence))


def test_a_short_history_keeps_its_sentence_start():
    """At order 4, w2 is predicted from (SENTENCE_START, w1): a word before SENTENCE_START can never
    have been seen, so adding one must not change the probability (it once dropped the start)."""
    model = KneserNey.fit(random_sentences(400), 4, VOCAB)
    table = model.table()
    first = random_sentences(400)[0][1]
    for word in range(2, VOCAB):
        expected = model.prob([1, first], word)
        assert model.prob([7, 1, first], word) == pytest.approx(expected, rel=1e-12)
        assert table.prob([1, first], word) == pytest.approx(expected, rel=1e-12)
    assert any(model.prob([1, first], w) != pytest.approx(model.prob([first], w)) for w in range(2, VOCAB))


def test_mixture_is_the_weighted_average_of_probabilities(fitted):
    _, table = fitted
    rng = np.random.default_rng(0)
    rnn = rng.random(VOCAB)
    rnn[1] = 0.0
    rnn /= rnn.sum()
    mixture = NgramMixture(table, rnn_weight=0.3)
    history = [1, 5, 6]
    with np.errstate(divide="ignore"):
        mixed = np.exp(mixture.next_word_log_probs(np.log(rnn), history))
    np.testing.assert_allclose(mixed, 0.3 * rnn + 0.7 * table.next_word_probs(history), rtol=1e-12)
    assert mixed.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("weight", [0.0, -0.1, 1.5])
def test_mixture_weight_must_be_a_share(fitted, weight):
    with pytest.raises(ValueError):
        NgramMixture(fitted[1], rnn_weight=weight)

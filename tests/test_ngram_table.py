"""The compact Kneser-Ney table against the fitted model it was built from, and the mixture."""
from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest

from models.mixture import NgramMixture
from models.model_file import load_model
from models.ngram_table import NewestFirst, NgramTable
from training.kneser_ney import KneserNey

VOCAB = 40
# written by main at 8cfeee1 (format 4, contexts keyed by their words as digits in base C): an RNN
# of 2 units and a 5-gram fitted on random_sentences(150) over VOCAB words
OLD_KEYS_MODEL = Path(__file__).parent / "fixtures" / "format4_ngram5.joblib"


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


def random_histories(count: int, seed: int) -> list[list[int]]:
    """Histories of every length from empty to longer than any order: real sentence openings
    (seen contexts), random words (mostly unseen ones), SENTENCE_START inside and at the start."""
    rng = np.random.default_rng(seed)
    seen = random_sentences(count, seed=1)
    histories = [[], [1], [1, 1], [5, 1], [1, 2, 1]]
    for i in range(count):
        if i % 3 == 0:
            sentence = seen[i]
            histories.append(sentence[: int(rng.integers(1, len(sentence) + 1))])
        else:
            histories.append(rng.integers(0, VOCAB, size=int(rng.integers(0, 9))).tolist())
    return histories


def test_flat_levels_hold_the_levels_arrays_once(fitted):
    """The levels of order - 1 down to 1 words as one set of arrays (what a batch reads with one
    take for all lengths): each level's arrays but its offsets are views into them, each level's
    contexts come after an empty one (no entries, 1 / total 0, backoff 1: an unseen context), and
    no probability changes (against the fitted model, which has no flat arrays). A table loaded
    from its payload has them as well."""
    model, table = fitted
    sentence = random_sentences(1, seed=6)[0]
    flat = table.flat
    assert flat.base.size == table.order - 1
    for column, k in enumerate(range(table.order - 1, 0, -1)):
        level, first, start = table.levels[k], int(flat.base[column]), int(flat.entry_base[column])
        for name in ("inverse_total", "backoff", "words", "discounted"):
            assert np.shares_memory(getattr(level, name), getattr(flat, name))
        np.testing.assert_array_equal(flat.offsets[first : first + level.keys.size + 1] - start, level.offsets)
        assert (flat.offsets[first - 1], flat.inverse_total[first - 1], flat.backoff[first - 1]) == (start, 0.0, 1.0)
    np.testing.assert_allclose(table.token_probs(sentence),
                               [model.prob(sentence[:i], sentence[i]) for i in range(1, len(sentence))], rtol=1e-12)
    loaded = NgramTable.from_payload(table.to_payload())
    for k in range(1, loaded.order):
        assert np.shares_memory(loaded.levels[k].words, loaded.flat.words)


def test_batched_rows_are_the_single_rows_bit_for_bit(fitted):
    _, table = fitted
    histories = random_histories(120, seed=5)
    batch = table.next_word_probs_batch(histories)
    assert batch.shape == (len(histories), VOCAB)
    for row, history in zip(batch, histories):
        np.testing.assert_array_equal(row, table.next_word_probs(history))
    if table.order > 1:  # the longer contexts are really found: most rows differ from the unigram row
        assert (batch != table.next_word_probs([])).any(axis=1).sum() > len(histories) // 2


def test_histories_read_newest_first_are_the_histories(fitted):
    """``NewestFirst`` keeps a history's last order - 1 words; the table reads it as the lists."""
    _, table = fitted
    histories = random_histories(60, seed=6)
    tails = NewestFirst.of(histories, table.order - 1)
    for row, history in enumerate(histories):
        assert tails.history(row) == (history[max(0, len(history) - table.order + 1) :] if table.order > 1 else [])
    np.testing.assert_array_equal(table.next_word_probs_batch(tails), table.next_word_probs_batch(histories))
    np.testing.assert_array_equal(table.contexts_batch(tails), table.contexts_batch(histories))


def test_batch_of_one_and_of_none(fitted):
    _, table = fitted
    np.testing.assert_array_equal(table.next_word_probs_batch([[1, 5]])[0], table.next_word_probs([1, 5]))
    assert table.next_word_probs_batch([]).shape == (0, VOCAB)


def test_old_base_c_keys_are_chained_when_loading():
    """A model file from before the chained keys gives the fitted model's probabilities, and the
    very table a fit gives today."""
    table = load_model(OLD_KEYS_MODEL).mixture.ngram
    stored = joblib.load(OLD_KEYS_MODEL)["ngram"]["kneser_ney"]["levels"]
    sentences = random_sentences(150)
    model = KneserNey.fit(sentences, 5, VOCAB)
    fresh = model.table()
    for converted, new_level, old_level in zip(table.levels, fresh.levels, stored):
        for name, value in new_level.to_payload().items():
            if name == "backoff":  # today's fit sums D_j N_j in a fixed order: the last bit may differ
                np.testing.assert_array_equal(np.sort(converted.backoff), np.sort(old_level["backoff"]))
                np.testing.assert_allclose(converted.backoff, value, rtol=1e-15)
            else:
                np.testing.assert_array_equal(getattr(converted, name), value, err_msg=name)
    for sentence in random_sentences(20, seed=6):
        for i in range(1, len(sentence)):
            assert table.prob(sentence[:i], sentence[i]) == pytest.approx(model.prob(sentence[:i], sentence[i]), rel=1e-12)
    histories = random_histories(30, seed=7)
    np.testing.assert_allclose(table.next_word_probs_batch(histories), fresh.next_word_probs_batch(histories), rtol=1e-14)


def test_keys_fit_an_int64_for_a_large_vocabulary():
    """Order 5 over 100k words: base-C keys would need 100000**4 > 2**63."""
    vocab = 100_000
    rng = np.random.default_rng(3)
    sentences = [[1, *rng.integers(3, vocab, size=6).tolist(), 2] for _ in range(50)]
    sentences += [list(s) for s in sentences[:10]]  # repeats, so some long contexts have several counts
    model = KneserNey.fit(sentences, 5, vocab)
    table = model.table()
    sentence = sentences[0]
    for i in range(1, len(sentence)):
        assert table.prob(sentence[:i], sentence[i]) == pytest.approx(model.prob(sentence[:i], sentence[i]), rel=1e-12)
    np.testing.assert_array_equal(table.next_word_probs_batch([sentence[:5]])[0], table.next_word_probs(sentence[:5]))
    assert table.next_word_probs(sentence[:5])[sentence[5]] > 0.5  # the 5-gram context was found


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

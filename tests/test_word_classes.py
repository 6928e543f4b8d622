"""Frequency binning of the vocabulary into classes for the class-based output layer."""
from __future__ import annotations

import numpy as np
import pytest

from models.word_classes import N_SPECIAL, WordClasses


def zipf_counts(vocab_size: int) -> list[int]:
    return [300, 0, 500] + [int(10_000 / r) for r in range(1, vocab_size - N_SPECIAL + 1)]


def test_classes_are_contiguous_ranges_covering_the_vocabulary():
    classes = WordClasses.from_counts(zipf_counts(1000), 32)
    assert classes.starts[0] == 0 and classes.starts[-1] == 1000
    assert np.all(np.diff(classes.starts) > 0)
    assert classes.word_class.shape == (1000,)
    for k in range(classes.n_classes):
        assert np.all(classes.word_class[classes.words_of(k)] == k)


def test_special_tokens_have_a_class_each():
    classes = WordClasses.from_counts(zipf_counts(1000), 32)
    assert list(classes.starts[: N_SPECIAL + 1]) == [0, 1, 2, 3]


def test_frequent_words_share_small_classes_and_rare_words_large_ones():
    counts = zipf_counts(8000)
    classes = WordClasses.from_counts(counts, WordClasses.default_count(8000))
    sizes = np.diff(classes.starts)
    assert classes.n_classes <= 89 and classes.n_classes > 60  # heavy words can leave bins empty
    assert sizes[N_SPECIAL] < sizes[-1]
    # the expected class size of a target word is far below the vocabulary size
    mass = np.asarray(counts[N_SPECIAL:], dtype=float) + 1
    expected = float((mass / mass.sum()) @ sizes[classes.word_class[N_SPECIAL:]])
    assert expected < 8000 / 20


def test_each_binned_class_holds_about_an_equal_share_of_the_mass():
    counts = zipf_counts(8000)
    classes = WordClasses.from_counts(counts, 40)
    mass = np.asarray(counts, dtype=float) + 1
    shares = np.add.reduceat(mass, classes.starts[:-1])[N_SPECIAL:] / mass[N_SPECIAL:].sum()
    single = np.diff(classes.starts)[N_SPECIAL:] == 1
    # a class of several words never exceeds two bins' worth of mass
    assert np.all(shares[~single] < 2 / (40 - N_SPECIAL))


@pytest.mark.parametrize("starts", [[0], [1, 3], [0, 2, 2, 5], [0, 3, 2]])
def test_bad_boundaries_are_refused(starts):
    with pytest.raises(ValueError):
        WordClasses(np.array(starts))


def test_too_few_classes_are_refused():
    with pytest.raises(ValueError):
        WordClasses.from_counts(zipf_counts(100), N_SPECIAL)

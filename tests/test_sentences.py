"""Encoded sentences in flat arrays behave as the list of lists they replace."""
from __future__ import annotations

import numpy as np
import pytest

from training.sentences import EncodedSentences

LISTS = [[1, 5, 2], [1, 2], [1, 7, 8, 9, 2], [1, 4, 2]]


def test_a_sequence_of_the_sentences():
    sentences = EncodedSentences.from_lists(LISTS)
    assert len(sentences) == 4 and [s.tolist() for s in sentences] == LISTS
    assert sentences[-1].tolist() == [1, 4, 2] and [s.tolist() for s in sentences[1:3]] == LISTS[1:3]
    assert sentences.lengths().tolist() == [3, 2, 5, 3] and sentences.predicted_tokens == 9
    assert EncodedSentences.from_lists(sentences) is sentences
    with pytest.raises(IndexError):
        sentences[4]
    with pytest.raises(ValueError):
        EncodedSentences(np.zeros(3, dtype=np.int32), np.array([0, 2]))


@pytest.mark.parametrize("chunk", [1, 2, 100])
def test_select_copies_the_chosen_sentences_in_order(chunk):
    sentences = EncodedSentences.from_lists(LISTS)
    chosen = sentences.select(np.array([3, 0, 2]), chunk=chunk)
    assert [s.tolist() for s in chosen] == [LISTS[3], LISTS[0], LISTS[2]]
    assert len(sentences.select(np.array([], dtype=np.int64))) == 0

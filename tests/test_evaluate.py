"""Kneser-Ney n-gram models, RNN text scoring, and the evaluate command."""
from __future__ import annotations

import math

import numpy as np
import pytest

from models.scoring import score_sentences, score_text
from models.vocabulary import SENTENCE_END, Vocabulary

S, E = Vocabulary.start_id, Vocabulary.end_id


# ------------------------------------------------------------------ RNN scoring
def test_score_sentences_matches_forward_propagation(tiny_loaded_model):
    model = tiny_loaded_model.model
    rng = np.random.default_rng(3)
    sentences = [[S, *rng.integers(3, model.vocab_size, size=n).tolist(), E] for n in (5, 0, 3, 9, 1, 3, 7, 2)]
    scores = score_sentences(model, sentences, batch_size=3)  # several batches of mixed lengths
    for sentence, got in zip(sentences, scores):
        o, _ = model.forward_propagation(sentence[:-1])
        expected = np.log(o[np.arange(len(sentence) - 1), sentence[1:]])
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_score_text_flags_unknown_words_and_keeps_sentences_apart(tiny_loaded_model):
    model, vocab = tiny_loaded_model.model, tiny_loaded_model.vocab
    result = score_text(model, vocab, "The cat sat on the zebra. She ran!\n\nBig dog\n\nwombats flew")
    assert [s.tokens for s in result.sentences] == [
        ["the", "cat", "sat", "on", "the", "zebra", ".", SENTENCE_END],
        ["she", "ran", "!", SENTENCE_END],
        ["big", "dog", SENTENCE_END],  # a paragraph break ends a sentence, as in training
        ["wombats", "flew", SENTENCE_END],
    ]
    assert [i for s in result.sentences for i, unknown in enumerate(s.unknown) if unknown] == [5, 0]
    assert result.tokens == 18 and result.unknown_words == 2 and result.unk_rate == pytest.approx(2 / 18)
    first = result.sentences[0]
    ids = vocab.encode_sentence(first.tokens[:-1])
    o, _ = model.forward_propagation(ids[:-1])
    assert first.log_probs[5] == pytest.approx(math.log(o[5, vocab.unknown_id]), abs=1e-5)
    assert first.perplexity == pytest.approx(math.exp(-sum(first.log_probs) / 8))
    all_log_probs = [lp for s in result.sentences for lp in s.log_probs]
    assert result.perplexity == pytest.approx(math.exp(-sum(all_log_probs) / 18))
    with pytest.raises(ValueError, match="no words"):
        score_text(model, vocab, " \n ")

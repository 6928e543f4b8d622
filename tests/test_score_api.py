"""POST /score: per-word log-probabilities, out-of-vocabulary flags and perplexities."""
from __future__ import annotations

import math

import numpy as np
import pytest

from models.batching import sentence_pairs
from models.text import tokenize_text
from tests.test_service_api import assert_error


def score(client, body):
    return client.post("/score", json=body)


def test_words_sentences_and_totals(client):
    body = score(client, {"inputs": "The cat sat on the mat. A zyzzyva ran!"}).get_json()
    assert list(body) == ["sentences", "tokens", "logprob", "perplexity", "oov_words"]
    first, second = body["sentences"]
    assert [w["word"] for w in first["words"]] == ["the", "cat", "sat", "on", "the", "mat", ".", "SENTENCE_END"]
    assert [w["special"] for w in first["words"]] == [False] * 7 + [True]
    assert [w["oov"] for w in second["words"]] == [False, True, False, False, False]
    assert body["oov_words"] == ["zyzzyva"]
    assert body["tokens"] == 13
    for sentence in (first, second):
        total = sum(w["logprob"] for w in sentence["words"])
        assert sentence["logprob"] == pytest.approx(total)
        assert sentence["perplexity"] == pytest.approx(math.exp(-total / len(sentence["words"])))
    assert body["logprob"] == pytest.approx(first["logprob"] + second["logprob"])
    assert body["perplexity"] == pytest.approx(math.exp(-body["logprob"] / 13))


def test_the_perplexity_is_the_one_training_reports(client, tiny_loaded_model):
    text = "She ran. The big red dog flew over the house today, and it was happy? A b c."
    vocab, model = tiny_loaded_model.vocab, tiny_loaded_model.model
    inputs, targets = sentence_pairs([vocab.encode_sentence(words) for words in tokenize_text(text)])
    expected = math.exp(model.calculate_loss(inputs, targets))
    assert score(client, {"inputs": text}).get_json()["perplexity"] == pytest.approx(expected, rel=1e-5)


def test_word_logprobs_agree_with_the_oracle(client, tiny_loaded_model):
    vocab = tiny_loaded_model.vocab
    words = ["the", "dog", "zyzzyva", "ran", "."]
    ids = [*vocab.encode(words), vocab.end_id]
    # the one-sentence oracle, float32, one word at a time
    o, _ = tiny_loaded_model.model.forward_propagation([vocab.start_id, *ids[:-1]])
    expected = np.log(o[np.arange(len(ids)), ids])
    scored = score(client, {"inputs": " ".join(words)}).get_json()["sentences"][0]["words"]
    np.testing.assert_allclose([w["logprob"] for w in scored], expected, rtol=1e-5)


@pytest.mark.parametrize("text", ["", "   ", "\n\n"])
def test_a_text_without_words(client, text):
    assert score(client, {"inputs": text}).get_json() == {
        "sentences": [], "tokens": 0, "logprob": 0.0, "perplexity": None, "oov_words": [],
    }


@pytest.mark.parametrize("body, status, fragments", [
    ({}, 422, ["inputs is required"]),
    ({"inputs": None}, 422, ["inputs is required"]),
    ({"inputs": 3}, 422, ["inputs must be a string"]),
    ({"inputs": ["a"]}, 422, ["inputs must be a string"]),
    ({"inputs": "x" * 10001}, 422, ["10000"]),
])
def test_bad_requests(client, body, status, fragments):
    assert_error(score(client, body), status, *fragments)


def test_unknown_fields_are_ignored(client):
    assert score(client, {"inputs": "a cat", "parameters": {}}).get_json() == score(client, {"inputs": "a cat"}).get_json()


def test_bad_bodies(client):
    assert_error(client.post("/score", data="{", content_type="application/json"), 400, "malformed JSON")
    assert_error(client.post("/score", data="[]", content_type="application/json"), 400, "JSON object")
    assert_error(client.post("/score", data="{}", content_type="text/plain"), 415)
    assert_error(client.get("/score"), 405, error_type="method_not_allowed")


def test_the_longest_text_is_scored(client):
    body = score(client, {"inputs": ("the cat sat. " * 800)[:10000]}).get_json()
    assert len(body["sentences"]) == 770 and body["perplexity"] > 1

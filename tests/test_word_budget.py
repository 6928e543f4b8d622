"""The work budget (RNNLM_MAX_REQUEST_WORDS): the most words one request may generate over all
its sequences and sentences. Each sequence stops at its share; a request that must generate
more (min_words) is refused up front with a 422 that names it."""
from __future__ import annotations

import pytest

from service.app import create_app
from service.config import ConfigError, ServiceConfig
from tests.prometheus_text import metric


def generated_words(client) -> float:
    return metric(client.get("/metrics").get_data(as_text=True), "rnnlm_generated_words_total", route="/generate")


def test_a_request_that_must_generate_more_than_the_budget_is_refused_before_it_runs(service_config):
    client = create_app(service_config).test_client()  # an app of its own: its own metrics
    # 4 x 20 x min_words 200 = 16,000 words it would have to generate: over 1,000
    response = client.post("/generate", json={"inputs": "the", "parameters": {
        "best_of": 4, "num_sentences": 20, "max_new_tokens": 200, "min_words": 200, "seed": 1, "do_sample": True}})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert ("parameters.best_of 4 x parameters.num_sentences 20 x parameters.min_words 200 = 16,000 words, "
            "over the limit of 1,000 words a request (RNNLM_MAX_REQUEST_WORDS)") in error
    assert generated_words(client) == 0  # refused before a word was generated


def test_a_large_length_is_taken_and_the_words_bounded_by_the_budget(service_config):
    client = create_app(ServiceConfig(**{**service_config.__dict__, "max_request_words": 100})).test_client()
    # 4 sequences of 20 sentences of up to 512 words: taken; each sequence gets 100 // 4 = 25 words
    body = client.post("/generate", json={"inputs": "the", "parameters": {
        "best_of": 4, "num_sentences": 20, "max_new_tokens": 512, "seed": 1, "do_sample": True,
        "details": True}}).get_json()
    sequences = [body["details"], *body["details"]["best_of_sequences"]]
    words = [sum(not t["special"] for t in s["tokens"]) for s in sequences]
    assert max(words) == 25 and any(s["finish_reason"] == "length" for s in sequences)
    assert generated_words(client) == sum(words) <= 100
    for route in ("/generate_stream", "/"):
        response = client.post(route, json={"parameters": {"num_sentences": 20, "max_new_tokens": 512,
                                                           "min_words": 5, "details": True}})
        assert response.status_code == 200


def test_openai_completions_share_the_budget_between_prompts_and_choices(service_config):
    client = create_app(ServiceConfig(**{**service_config.__dict__, "max_request_words": 100})).test_client()
    body = client.post("/v1/completions", json={"model": "rnnlm", "prompt": ["a", "b"], "n": 2, "max_tokens": 256,
                                               "logprobs": 0, "seed": 2}).get_json()
    assert all(len(c["logprobs"]["tokens"]) <= 25 for c in body["choices"])
    assert body["usage"]["completion_tokens"] <= 100
    small = ServiceConfig(**{**service_config.__dict__, "max_request_words": 3})
    over = create_app(small).test_client().post("/v1/completions", json={"model": "rnnlm", "prompt": ["a", "b"],
                                                                         "n": 2})
    assert over.status_code == 400  # OpenAI's status for a bad request
    assert "prompts x n 4 = 4 words, over the limit of 3" in over.get_json()["error"]["message"]
    assert client.get("/info").get_json()["limits"]["max_request_words"] == 100


def test_the_budget_is_configured_by_its_variable():
    assert ServiceConfig.from_env({}).max_request_words == 1000
    assert ServiceConfig.from_env({"RNNLM_MAX_REQUEST_WORDS": "5000"}).max_request_words == 5000
    with pytest.raises(ConfigError, match="RNNLM_MAX_REQUEST_WORDS must be an integer >= 1"):
        ServiceConfig.from_env({"RNNLM_MAX_REQUEST_WORDS": "0"})

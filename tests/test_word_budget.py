"""The work budget (RNNLM_MAX_REQUEST_WORDS): the most words one request may generate over all
its sequences and sentences, refused up front with a 422 that names it."""
from __future__ import annotations

import pytest

from service.app import create_app
from service.config import ConfigError, ServiceConfig
from tests.prometheus_text import metric


def generated_words(client) -> float:
    return metric(client.get("/metrics").get_data(as_text=True), "rnnlm_generated_words_total", route="/generate")


def test_a_request_over_the_budget_is_refused_before_it_runs(service_config):
    client = create_app(service_config).test_client()  # an app of its own: its own metrics
    # 4 x 20 x 200 = 16,000 words: each limit alone allows it, together they are over 1,000
    response = client.post("/generate", json={"inputs": "the", "parameters": {
        "best_of": 4, "num_sentences": 20, "max_new_tokens": 200, "min_words": 200, "seed": 1}})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert ("parameters.best_of 4 x parameters.num_sentences 20 x parameters.max_new_tokens 200 = 16,000 words, "
            "over the limit of 1,000 words a request (RNNLM_MAX_REQUEST_WORDS)") in error
    for route in ("/generate_stream", "/"):
        assert client.post(route, json={"parameters": {"num_sentences": 20, "max_new_tokens": 51}}).status_code == 422
    assert generated_words(client) == 0  # refused before a word was generated
    assert client.post("/generate", json={"parameters": {"num_sentences": 20, "max_new_tokens": 50}}).status_code == 200
    assert generated_words(client) > 0


def test_openai_completions_count_prompts_and_choices(service_config):
    client = create_app(ServiceConfig(**{**service_config.__dict__, "max_request_words": 100})).test_client()
    ok = client.post("/v1/completions", json={"model": "rnnlm", "prompt": ["a", "b"], "n": 2, "max_tokens": 25})
    assert ok.status_code == 200
    over = client.post("/v1/completions", json={"model": "rnnlm", "prompt": ["a", "b"], "n": 2, "max_tokens": 26})
    assert over.status_code == 400  # OpenAI's status for a bad request
    error = over.get_json()["error"]
    assert error["param"] == "max_tokens" and "prompts 2 x n 2 x max_tokens 26 = 104 words" in error["message"]
    assert client.get("/info").get_json()["limits"]["max_request_words"] == 100


def test_the_budget_is_configured_by_its_variable():
    assert ServiceConfig.from_env({}).max_request_words == 1000
    assert ServiceConfig.from_env({"RNNLM_MAX_REQUEST_WORDS": "5000"}).max_request_words == 5000
    with pytest.raises(ConfigError, match="RNNLM_MAX_REQUEST_WORDS must be an integer >= 1"):
        ServiceConfig.from_env({"RNNLM_MAX_REQUEST_WORDS": "0"})

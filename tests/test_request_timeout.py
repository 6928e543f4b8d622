"""The per-request time limit (RNNLM_REQUEST_TIMEOUT_SECONDS): a generation that runs past it is
stopped between two words with a clear 503, or an error event once a stream has begun."""
from __future__ import annotations

import time

import pytest

from service.app import create_app
from service.config import ConfigError, ServiceConfig
from tests.sse import sse_data
from tests.test_openapi import check_response

LONG = {"inputs": "the cat", "parameters": {"num_sentences": 20, "max_new_tokens": 50, "seed": 3}}  # the word budget's 1,000


@pytest.fixture(scope="module")
def strict_client(tiny_model_path):
    """A limit no generation of 20 sentences can meet."""
    return create_app(ServiceConfig(model_path=str(tiny_model_path), request_timeout_seconds=1e-6)).test_client()


def test_generate_past_the_limit_is_a_clear_503(strict_client, client):
    started = time.monotonic()
    response = strict_client.post("/generate", json=LONG)
    assert response.status_code == 503
    body = response.get_json()
    assert body["error_type"] == "timeout" and "time limit of 1e-06 s" in body["error"] and "fewer" in body["error"]
    assert time.monotonic() - started < 1.0  # stopped, not run to the end
    assert client.post("/generate", json=LONG).status_code == 200  # the default limit lets it finish


def test_best_of_and_openai_completions_share_one_limit(strict_client):
    best_of = strict_client.post("/generate", json={"inputs": "", "parameters": {"best_of": 3, "seed": 1,
                                                                                 "do_sample": True}})
    assert best_of.status_code == 503
    completion = strict_client.post("/v1/completions", json={"model": "rnnlm", "prompt": ["a", "b"], "max_tokens": 50})
    assert completion.status_code == 503
    error = completion.get_json()["error"]
    assert error["type"] == "timeout_error" and "time limit" in error["message"]
    # openai-python retries a 503 unless told not to: a timeout would run the same long request again
    assert best_of.headers["x-should-retry"] == completion.headers["x-should-retry"] == "false"
    document = strict_client.get("/openapi.json").get_json()
    check_response(document, "/generate", "POST", best_of)
    check_response(document, "/v1/completions", "POST", completion)


def test_streams_end_with_a_timeout_event(strict_client):
    stream = strict_client.post("/generate_stream", json=LONG)
    assert stream.status_code == 200
    events = sse_data(stream.get_data(as_text=True))
    assert events[-1]["error_type"] == "timeout" and "time limit" in events[-1]["error"]
    openai = strict_client.post("/v1/completions", json={"model": "rnnlm", "prompt": "a", "max_tokens": 50, "stream": True})
    events = sse_data(openai.get_data(as_text=True))
    assert events[-1]["error"]["type"] == "timeout_error"
    document = strict_client.get("/openapi.json").get_json()
    check_response(document, "/generate_stream", "POST", stream)
    check_response(document, "/v1/completions", "POST", openai)


@pytest.mark.parametrize("raw", ["0", "-1", "soon", "inf", "nan"])
def test_bad_limits_are_refused_at_start(raw):
    with pytest.raises(ConfigError, match="RNNLM_REQUEST_TIMEOUT_SECONDS must be a number of seconds > 0"):
        ServiceConfig.from_env({"RNNLM_REQUEST_TIMEOUT_SECONDS": raw})
    assert ServiceConfig.from_env({"RNNLM_REQUEST_TIMEOUT_SECONDS": "2.5"}).request_timeout_seconds == 2.5
    assert ServiceConfig.from_env({}).request_timeout_seconds == 10.0


def test_score_runs_under_the_same_limit(strict_client, client):
    text = {"inputs": "The cat sat on the mat. " * 40}
    response = strict_client.post("/score", json=text)
    assert response.status_code == 503
    body = response.get_json()
    assert body["error_type"] == "timeout" and "time limit of 1e-06 s" in body["error"] and "shorter text" in body["error"]
    assert client.post("/score", json=text).status_code == 200  # the default limit lets it finish

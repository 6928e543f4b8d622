"""The OpenAI-compatible routes through Flask's test client: completions, models, errors."""
from __future__ import annotations

from typing import Any

import pytest

from tests.busy_engine import busy_engine
from tests.sse import sse_data
from tests.test_openapi import check_response

MODEL = "rnnlm"


def complete(client, **body: Any):
    return client.post("/v1/completions", json={"model": MODEL, **body})


def assert_openai_error(response, status: int, param: str | None, *fragments: str, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert list(body) == ["error"]
    error = body["error"]
    assert list(error) == ["message", "type", "param", "code"]
    assert error["param"] == param and error["code"] == code
    for fragment in fragments:
        assert fragment in error["message"]
    return error


def test_a_completion(client):
    body = complete(client, prompt="the cat", max_tokens=10, seed=3).get_json()
    assert list(body) == ["id", "object", "created", "model", "choices", "usage"]
    assert body["object"] == "text_completion" and body["model"] == MODEL and body["id"].startswith("cmpl-")
    (choice,) = body["choices"]
    assert list(choice) == ["text", "index", "logprobs", "finish_reason"]
    assert choice["index"] == 0 and choice["logprobs"] is None and choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["prompt_tokens"] == 2 and usage["total_tokens"] == 2 + usage["completion_tokens"] > 2


def test_the_same_seed_gives_the_same_text_as_generate(client):
    for seed in range(4):
        choice = complete(client, prompt="a dog", max_tokens=20, seed=seed, temperature=0.7, top_p=0.9,
                          stop=["sad"]).get_json()["choices"][0]
        tgi = client.post("/generate", json={"inputs": "a dog", "parameters": {
            "max_new_tokens": 20, "seed": seed, "temperature": 0.7, "top_p": 0.9, "stop": ["sad"]}}).get_json()
        assert choice["text"] == tgi["generated_text"]


def test_temperature_zero_is_greedy(client):
    texts = {complete(client, prompt="she", temperature=0, seed=s).get_json()["choices"][0]["text"] for s in range(3)}
    greedy = client.post("/generate", json={"inputs": "she", "parameters": {"do_sample": False, "max_new_tokens": 16}})
    assert texts == {greedy.get_json()["generated_text"]}


def test_n_choices_use_consecutive_seeds(client):
    choices = complete(client, prompt="the", n=3, seed=40, max_tokens=12).get_json()["choices"]
    assert [c["index"] for c in choices] == [0, 1, 2]
    for i, choice in enumerate(choices):
        alone = complete(client, prompt="the", seed=40 + i, max_tokens=12).get_json()["choices"][0]
        assert choice["text"] == alone["text"]


def test_several_prompts(client):
    choices = complete(client, prompt=["the cat", "a dog"], n=2, seed=1, max_tokens=5).get_json()["choices"]
    assert len(choices) == 4
    assert choices[2]["text"] == complete(client, prompt="a dog", seed=1, max_tokens=5).get_json()["choices"][0]["text"]


def test_stop_max_tokens_and_echo(client):
    choice = complete(client, prompt="the cat", max_tokens=3, seed=2, echo=True).get_json()["choices"][0]
    assert choice["text"].startswith("the cat ")
    stopped = complete(client, prompt="", max_tokens=40, seed=2, stop=".").get_json()["choices"][0]
    assert "." not in stopped["text"] and stopped["finish_reason"] in ("stop", "length")
    cut = complete(client, prompt="", max_tokens=1, seed=2, temperature=0.01).get_json()["choices"][0]
    assert cut["finish_reason"] == "length" and len(cut["text"].split()) == 1


def test_logprobs(client):
    choice = complete(client, prompt="the cat", max_tokens=8, seed=5, logprobs=2, echo=True).get_json()["choices"][0]
    logprobs = choice["logprobs"]
    assert "".join(logprobs["tokens"]) == choice["text"]  # the echoed prompt's words first
    assert logprobs["tokens"][:2] == ["the", " cat"]
    assert len(logprobs["token_logprobs"]) == len(logprobs["tokens"]) == len(logprobs["text_offset"])
    assert all(lp < 0 for lp in logprobs["token_logprobs"])
    assert all(len(top) == 2 for top in logprobs["top_logprobs"])
    for token, offset in zip(logprobs["tokens"], logprobs["text_offset"]):
        assert choice["text"][offset:offset + len(token)] == token
    none = complete(client, prompt="the cat", max_tokens=8, seed=5, logprobs=0).get_json()["choices"][0]["logprobs"]
    assert none["top_logprobs"] is None and len(none["tokens"]) > 0


def test_streamed_completion(client):
    response = complete(client, prompt="the cat", max_tokens=20, seed=9, n=2, stream=True,
                        stream_options={"include_usage": True})
    assert response.mimetype == "text/event-stream"
    events = sse_data(response.get_data(as_text=True))
    assert events[-1] == "[DONE]"
    usage = events[-2]
    assert usage["choices"] == [] and usage["usage"]["prompt_tokens"] == 2
    chunks = events[:-2]
    assert all(c["object"] == "text_completion" and c["id"] == chunks[0]["id"] for c in chunks)
    whole = complete(client, prompt="the cat", max_tokens=20, seed=9, n=2).get_json()
    for index in (0, 1):
        mine = [c["choices"][0] for c in chunks if c["choices"][0]["index"] == index]
        assert "".join(c["text"] for c in mine) == whole["choices"][index]["text"]
        assert [c["finish_reason"] for c in mine][-1] == whole["choices"][index]["finish_reason"]
        assert all(c["finish_reason"] is None for c in mine[:-1])
    assert usage["usage"] == whole["usage"]


def test_stream_without_usage_ends_with_done(client):
    events = sse_data(complete(client, prompt="", stream=True, seed=1).get_data(as_text=True))
    assert events[-1] == "[DONE]" and all(e["choices"] for e in events[:-1])


def test_models(client):
    body = client.get("/v1/models").get_json()
    assert body["object"] == "list"
    (card,) = body["data"]
    assert card["id"] == MODEL and card["object"] == "model" and isinstance(card["created"], int)
    assert client.get(f"/v1/models/{MODEL}").get_json() == card
    assert_openai_error(client.get("/v1/models/gpt-4"), 404, "model_id", "gpt-4", code="model_not_found")


# ------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("body, param, fragments", [
    ({"max_tokens": 0}, "max_tokens", ["only allowed with echo"]),
    ({"max_tokens": -1}, "max_tokens", ["between 0 and 4294967295"]),
    ({"max_tokens": 2**32}, "max_tokens", ["between 0 and 4294967295"]),
    ({"max_tokens": "5"}, "max_tokens", ["an integer"]),
    ({"temperature": -0.1}, "temperature", [">= 0 and <= 2"]),
    ({"temperature": 2.5}, "temperature", [">= 0 and <= 2"]),
    ({"temperature": "hot"}, "temperature", ["a number"]),
    ({"top_p": 0}, "top_p", ["> 0 and <= 1"]),
    ({"top_p": 1.5}, "top_p", []),
    ({"n": 0}, "n", ["between 1 and 4"]),
    ({"n": 5}, "n", ["between 1 and 4"]),
    ({"n": 2, "prompt": ["a"] * 17}, "n", ["at most 32"]),
    ({"prompt": ["a"] * 33}, "prompt", ["at most 32"]),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop", ["at most 4"]),
    ({"stop": 5}, "stop", ["a string or an array of strings"]),
    ({"stop": [""]}, "stop", ["1 to 200"]),
    ({"seed": -1}, "seed", ["between 0 and"]),
    ({"seed": 1.5}, "seed", ["an integer"]),
    ({"logprobs": 6}, "logprobs", ["between 0 and 5"]),
    ({"logprobs": True}, "logprobs", ["an integer"]),
    ({"echo": "yes"}, "echo", ["true or false"]),
    ({"stream": 1}, "stream", ["true or false"]),
    ({"stream_options": {"include_usage": True}}, "stream_options", ["only allowed when stream is true"]),
    ({"stream": True, "stream_options": {"include_usage": 1}}, "stream_options.include_usage", ["true or false"]),
    ({"stream": True, "stream_options": []}, "stream_options", ["an object"]),
    ({"prompt": [1, 2, 3]}, "prompt", ["a string"]),
    ({"prompt": []}, "prompt", ["non-empty array"]),
    ({"prompt": 7}, "prompt", ["token arrays are not supported"]),
    ({"prompt": "x" * 2001}, "prompt", ["2000"]),
    ({"top_k": 0}, "top_k", [">= 1"]),
    ({"repetition_penalty": 0}, "repetition_penalty", ["> 0"]),
    ({"presence_penalty": 2.5}, "presence_penalty", [">= -2 and <= 2"]),
    ({"frequency_penalty": -2.01}, "frequency_penalty", [">= -2 and <= 2"]),
    ({"logit_bias": {"1": 101}}, "logit_bias[1]", [">= -100 and <= 100"]),
    ({"logit_bias": {"x": 1}}, "logit_bias", ["word ids"]),
    ({"logit_bias": {"99999": 1}}, "logit_bias", ["not a word id"]),
    ({"logit_bias": []}, "logit_bias", ["an object"]),
    ({"best_of": 3}, "best_of", ["not supported"]),
    ({"suffix": "!"}, "suffix", ["not supported"]),
    ({"user": 5}, "user", ["a string"]),
    ({"model": 3}, "model", ["a string"]),
])
def test_bad_completion_requests_are_400(client, body, param, fragments):
    error = assert_openai_error(complete(client, **body), 400, param, *fragments)
    assert error["type"] == "invalid_request_error"


def test_unknown_model_is_404(client):
    error = assert_openai_error(complete(client, model="gpt-3.5-turbo-instruct"), 404, "model", "gpt-3.5",
                                code="model_not_found")
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize("body", [{"prompt": "she was", "seed": 3}, {"model": None, "prompt": "she was", "seed": 3}])
def test_a_completion_without_a_model_name_is_the_served_models(client, body):
    named = complete(client, prompt="she was", seed=3)
    response = client.post("/v1/completions", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["model"] == MODEL
    assert response.get_json()["choices"] == named.get_json()["choices"]


def test_neutral_values_of_unsupported_fields_are_accepted(client):
    assert complete(client, best_of=1, suffix=None, user="me", prompt=["x"]).status_code == 200


def test_unknown_fields_are_ignored_and_clients_defaults_taken(client):
    # LangChain's OpenAI sends logit_bias {} and max_tokens 256, and batches up to 20 prompts
    body = complete(client, prompt=["the cat"] * 20, max_tokens=256, logit_bias={}, seed=4, temperature=0.7,
                    frequency_penalty=0, presence_penalty=0, n=1, best_of=1, future_field={"x": 1},
                    stream_options=None).get_json()
    assert len(body["choices"]) == 20
    assert complete(client, stream=True, stream_options={"include_usage": True, "other": 1}).status_code == 200


@pytest.mark.parametrize("data, content_type, status", [
    ("{bad", "application/json", 400), ("[]", "application/json", 400), ("{}", "text/plain", 415),
])
def test_malformed_bodies_get_openai_errors(client, data, content_type, status):
    response = client.post("/v1/completions", data=data, content_type=content_type)
    assert_openai_error(response, status, None)


def test_routing_errors_under_v1_are_openai_shaped(client):
    assert_openai_error(client.get("/v1/nope"), 404, None, "/v1/nope")
    assert client.get("/v1/nope").get_json()["error"]["type"] == "invalid_request_error"
    response = client.get("/v1/completions")
    assert_openai_error(response, 405, None, "GET")
    assert "POST" in response.headers["Allow"]


def test_overload_is_429_in_openai_shape(app, client):
    with busy_engine(app):
        error = assert_openai_error(complete(client), 429, None, "overloaded", code="overloaded")
        assert error["type"] == "overloaded_error"
    assert complete(client).status_code == 200


def test_a_failure_while_streaming_ends_the_stream_with_an_error_event(app, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(app.extensions["rnnlm"].generator.engine.decoder, "step", broken)
    client = app.test_client()
    events = sse_data(complete(client, stream=True).get_data(as_text=True))
    failed = "the generation failed; the fault is logged on the server"
    assert events == [{"error": {"message": failed, "type": "server_error", "param": None, "code": None}}]
    tgi = client.post("/generate_stream", json={})
    assert sse_data(tgi.get_data(as_text=True)) == [{"error": failed, "error_type": "generation"}]
    whole = client.post("/generate", json={})  # TGI's status for a failed generation
    assert whole.status_code == 424 and whole.get_json() == {"error": failed, "error_type": "generation"}
    document = client.get("/openapi.json").get_json()
    check_response(document, "/generate", "POST", whole)
    check_response(document, "/v1/chat/completions", "POST",
                   client.post("/v1/chat/completions", json={"model": "rnnlm", "messages": [{"role": "user",
                                                                                           "content": "a"}]}))
    assert "secret" not in tgi.get_data(as_text=True) and "secret internal detail" in caplog.text

"""The text-generation-inference routes through Flask's test client: /generate's new
parameters, /generate_stream's events, POST /, and their error paths."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from service.app import create_app
from tests.busy_engine import busy_engine
from tests.sse import sse_data
from tests.test_service_api import assert_error


def generate(client, params: dict[str, Any], inputs: str = "the cat", route: str = "/generate", **extra: Any):
    return client.post(route, json={"inputs": inputs, "parameters": params, **extra})


def stream(client, params: dict[str, Any], inputs: str = "the cat", route: str = "/generate_stream", **extra):
    response = generate(client, params, inputs, route, **extra)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/event-stream"
    return sse_data(response.get_data(as_text=True))


def text_with_stop(client, stop: str, **params: Any) -> tuple[dict, str]:
    """Parameters (with a seed) whose unstopped text contains ``stop`` after its start."""
    for seed in range(300):
        chosen = {"seed": seed, "max_new_tokens": 40, "do_sample": True, **params}
        text = generate(client, chosen).get_json()["generated_text"]
        if stop in text[1:]:
            return chosen, text
    raise AssertionError(f"no seed gives {stop!r}")


# --------------------------------------------------------------------------------- /generate
def test_stop_cuts_the_text_and_says_why(client):
    params, unstopped = text_with_stop(client, "dog")
    body = generate(client, {**params, "stop": ["dog", "zzz"], "details": True}).get_json()
    assert body["generated_text"] == unstopped[: unstopped.index("dog")]
    assert body["details"]["finish_reason"] == "stop_sequence"
    assert "".join(t["text"] for t in body["details"]["tokens"]) == body["generated_text"]


def test_return_full_text_prepends_the_inputs_as_sent(client):
    params = {"seed": 4, "num_sentences": 2}
    new = generate(client, params, inputs="The  cat").get_json()["generated_text"]
    full = generate(client, {**params, "return_full_text": True}, inputs="The  cat").get_json()["generated_text"]
    assert full == "The  cat" + new and not new.startswith("The")


def test_top_n_tokens(client):
    details = generate(client, {"seed": 1, "top_n_tokens": 3, "details": True}).get_json()["details"]
    assert len(details["top_tokens"]) == len(details["tokens"])
    for alternatives in details["top_tokens"]:
        assert len(alternatives) == 3
        assert all(list(a) == ["id", "text", "logprob", "special"] for a in alternatives)
    assert "top_tokens" not in generate(client, {"seed": 1, "details": True}).get_json()["details"]


def test_repetition_penalty(client):
    params = {"do_sample": False, "max_new_tokens": 25, "min_words": 25, "details": True}
    plain = generate(client, params, inputs="").get_json()["details"]["tokens"]
    penalized = generate(client, {**params, "repetition_penalty": 10.0}, inputs="").get_json()["details"]["tokens"]
    assert len({t["id"] for t in plain}) < 25 == len({t["id"] for t in penalized})


def test_best_of_returns_the_likeliest_and_the_others(client):
    params = {"seed": 10, "best_of": 3, "details": True, "max_new_tokens": 30, "do_sample": True}
    body = generate(client, params).get_json()
    others = body["details"]["best_of_sequences"]
    assert len(others) == 2
    singles = [generate(client, {"seed": 10 + i, "details": True, "max_new_tokens": 30, "do_sample": True}).get_json()
               for i in range(3)]

    def mean(tokens: list[dict]) -> float:
        return sum(t["logprob"] for t in tokens) / len(tokens)

    best = max(singles, key=lambda s: mean(s["details"]["tokens"]))
    assert body["generated_text"] == best["generated_text"]
    assert body["details"]["seed"] == best["details"]["seed"]
    assert sorted(o["seed"] for o in others) == sorted({10, 11, 12} - {best["details"]["seed"]})
    for other in others:
        single = singles[other["seed"] - 10]
        assert other["generated_text"] == single["generated_text"]
        assert other["tokens"] == single["details"]["tokens"]


def test_neutral_values_of_unsupported_tgi_parameters_are_accepted(client):
    params = {"watermark": False, "decoder_input_details": False, "truncate": None, "grammar": None,
              "adapter_id": None, "best_of": 1, "top_n_tokens": 0}
    assert generate(client, params).status_code == 200


# ------------------------------------------------------------------------ /generate_stream
def test_stream_events_have_tgi_shape(client):
    params = {"seed": 3, "num_sentences": 2, "max_new_tokens": 20}
    events = stream(client, params)
    whole = generate(client, {**params, "details": True}).get_json()
    assert [e["index"] for e in events] == list(range(1, len(events) + 1))
    for event in events[:-1]:
        assert list(event) == ["index", "token", "generated_text", "details"]
        assert event["generated_text"] is None and event["details"] is None
    last = events[-1]
    assert last["generated_text"] == whole["generated_text"]
    assert last["details"] == {
        "finish_reason": whole["details"]["finish_reason"], "generated_tokens": len(events),
        "seed": 3, "input_length": 2, "unknown_words": [],
    }
    assert [e["token"] for e in events] == whole["details"]["tokens"]


def test_stream_with_stop_top_n_and_full_text(client):
    params, unstopped = text_with_stop(client, "bird")
    params = {**params, "stop": ["bird"], "top_n_tokens": 2, "return_full_text": True}
    events = stream(client, params)
    assert events[-1]["generated_text"] == "the cat" + unstopped[: unstopped.index("bird")]
    assert events[-1]["details"]["finish_reason"] == "stop_sequence"
    assert all(len(e["top_tokens"]) == 2 for e in events)
    assert "bird" not in "".join(e["token"]["text"] for e in events)


def test_a_seed_gives_the_same_text_streamed_or_not(client):
    for seed in range(5):
        params = {"seed": seed, "num_sentences": 2, "temperature": 0.8, "top_k": 20}
        events = stream(client, params)
        assert "".join(e["token"]["text"] for e in events) == events[-1]["generated_text"]
        assert events[-1]["generated_text"] == generate(client, params).get_json()["generated_text"]


def test_stream_refuses_best_of(client):
    assert_error(generate(client, {"best_of": 2, "do_sample": True}, route="/generate_stream"), 422,
                 "parameters.best_of", "stream")


# ------------------------------------------------------------------------------------ POST /
def test_root_answers_a_list_with_the_full_text_by_default(client):
    body = generate(client, {"seed": 8}, route="/").get_json()
    assert isinstance(body, list) and len(body) == 1
    new = generate(client, {"seed": 8}).get_json()["generated_text"]
    assert body[0]["generated_text"] == "the cat" + new


def test_root_streams_when_asked(client):
    events = stream(client, {"seed": 8, "return_full_text": False}, route="/", stream=True)
    assert events[-1]["generated_text"] == generate(client, {"seed": 8}).get_json()["generated_text"]
    assert generate(client, {"seed": 8}, route="/", stream=False).status_code == 200


def test_stream_is_a_field_of_root_only(client):
    assert generate(client, {}, stream=True).mimetype == "application/json"  # ignored, as TGI ignores it
    assert_error(generate(client, {}, route="/", stream="yes"), 422, "stream", "true or false")


def test_tgi_do_sample_rule(client):
    """TGI is greedy unless do_sample is true or a warper (temperature, top_k, top_p, typical_p) samples."""
    def texts(**params: Any) -> set[str]:
        return {generate(client, {"seed": seed, "max_new_tokens": 12, **params}).get_json()["generated_text"]
                for seed in range(6)}

    greedy = texts()
    assert len(greedy) == 1 and greedy == texts(do_sample=False) == texts(temperature=1.0, top_p=1.0, typical_p=1.0)
    for sampling in ({"do_sample": True}, {"temperature": 0.9}, {"top_k": 20}, {"top_p": 0.95}, {"typical_p": 0.95},
                     {"do_sample": False, "temperature": 0.9}):
        assert len(texts(**sampling)) > 1, sampling


# ------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("params, fragments", [
    ({"stop": "dog"}, ["parameters.stop", "array of strings"]),
    ({"stop": ["a", "b", "c", "d", "e"]}, ["parameters.stop", "at most 4"]),
    ({"stop": [""]}, ["parameters.stop", "1 to 200"]),
    ({"stop": ["x" * 201]}, ["parameters.stop", "1 to 200"]),
    ({"stop": [3]}, ["parameters.stop items", "strings"]),
    ({"stop": [None]}, ["parameters.stop items", "strings"]),
    ({"repetition_penalty": 0}, ["parameters.repetition_penalty", "> 0"]),
    ({"repetition_penalty": -1.5}, ["parameters.repetition_penalty"]),
    ({"repetition_penalty": 11}, ["parameters.repetition_penalty", "<= 10"]),
    ({"repetition_penalty": "1.2"}, ["parameters.repetition_penalty", "a number"]),
    ({"repetition_penalty": True}, ["parameters.repetition_penalty", "a number"]),
    ({"return_full_text": 1}, ["parameters.return_full_text", "true or false"]),
    ({"return_full_text": "false"}, ["parameters.return_full_text"]),
    ({"top_n_tokens": 6}, ["parameters.top_n_tokens", "between 0 and 5"]),
    ({"top_n_tokens": -1}, ["parameters.top_n_tokens"]),
    ({"top_n_tokens": 1.5}, ["parameters.top_n_tokens", "an integer"]),
    ({"best_of": 0}, ["parameters.best_of", "between 1 and 4"]),
    ({"best_of": 5}, ["parameters.best_of", "between 1 and 4"]),
    ({"best_of": "2"}, ["parameters.best_of", "an integer"]),
    ({"best_of": 2, "do_sample": False}, ["parameters.best_of", "sampling"]),
    ({"watermark": True}, ["parameters.watermark", "not supported"]),
    ({"decoder_input_details": 1}, ["parameters.decoder_input_details", "true or false"]),
    ({"frequency_penalty": 2.5}, ["parameters.frequency_penalty", ">= -2 and <= 2"]),
    ({"typical_p": 0}, ["parameters.typical_p", "> 0 and <= 1"]),
    ({"typical_p": 1.5}, ["parameters.typical_p", "> 0 and <= 1"]),
    ({"truncate": 10}, ["parameters.truncate", "not supported"]),
    ({"grammar": {"type": "regex", "value": "a+"}}, ["parameters.grammar", "not supported"]),
    ({"adapter_id": "x"}, ["parameters.adapter_id", "not supported"]),
])
@pytest.mark.parametrize("route", ["/generate", "/generate_stream", "/"])
def test_bad_new_parameters_are_422(client, route, params, fragments):
    assert_error(generate(client, params, route=route), 422, *fragments)


@pytest.mark.parametrize("route", ["/generate_stream", "/"])
def test_stream_routes_share_the_generate_checks(client, route):
    assert_error(generate(client, {"top_p": 2}, route=route), 422, "parameters.top_p")
    assert_error(client.post(route, data="{bad", content_type="application/json"), 400, "malformed JSON")
    assert_error(client.post(route, data="{}", content_type="text/plain"), 415, "Content-Type")


def test_no_room_in_the_engine_is_429_with_retry_after(app, client):
    with busy_engine(app):
        for route in ("/generate", "/generate_stream", "/"):
            response = client.post(route, json={})
            assert_error(response, 429, "overloaded", error_type="overloaded")
            assert int(response.headers["Retry-After"]) >= 1
        assert client.get("/health").status_code == 200  # only generation waits for the engine
    assert client.post("/generate", json={}).status_code == 200  # room again once the held request ends

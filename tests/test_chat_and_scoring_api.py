"""POST /v1/chat/completions, scoring through OpenAI's echo + logprobs (as lm-evaluation-harness
sends its log-likelihood requests), POST /tokenize and TGI's details of /info and the headers."""
from __future__ import annotations

import math

import pytest

from service.chat_api import chat_prompt
from tests.sse import sse_data
from tests.test_openai_api import assert_openai_error
from tests.test_openapi import check_response

MODEL = "rnnlm"


def chat(client, **body):
    return client.post("/v1/chat/completions", json={"model": MODEL, **body})


def user(text: str) -> list[dict]:
    return [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": text}]


# ------------------------------------------------------------------------------------ chat
def test_the_template_continues_an_unfinished_sentence_or_starts_a_new_one():
    assert chat_prompt("Hello there. The cat sat on") == "The cat sat on"
    assert chat_prompt("The cat sat.") == chat_prompt("Is it? ") == chat_prompt('He said "go."') == ""
    assert chat_prompt("") == ""


def test_chat_answer_is_the_completion_of_the_template_prompt(client):
    body = chat(client, messages=user("Hi. The cat"), seed=4, max_tokens=12, n=2).get_json()
    assert body["object"] == "chat.completion" and len(body["choices"]) == 2
    completion = client.post("/v1/completions", json={"model": MODEL, "prompt": "The cat", "seed": 4,
                                                      "max_tokens": 12, "n": 2}).get_json()
    for choice, plain in zip(body["choices"], completion["choices"]):
        assert choice["message"] == {"role": "assistant", "content": plain["text"].lstrip()}
        assert choice["finish_reason"] == plain["finish_reason"]
    assert body["usage"]["prompt_tokens"] == 3  # the last user message read as one sentence: "hi." the cat
    assert body["usage"]["completion_tokens"] == completion["usage"]["completion_tokens"]


def test_chat_stream_equals_the_whole_answer(client):
    params = {"messages": user("A dog"), "seed": 7, "max_completion_tokens": 15, "logprobs": True, "top_logprobs": 2}
    whole = chat(client, **params).get_json()["choices"][0]
    events = sse_data(chat(client, **params, stream=True, stream_options={"include_usage": True})
                      .get_data(as_text=True))
    assert events[-1] == "[DONE]" and events[-2]["usage"]["completion_tokens"] > 0
    chunks = [e["choices"][0] for e in events[:-2]]
    assert chunks[0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["delta"].get("content", "") for c in chunks) == whole["message"]["content"]
    assert chunks[-1]["finish_reason"] == whole["finish_reason"] and chunks[-1]["delta"] == {}
    streamed = [entry for c in chunks if c["logprobs"] for entry in c["logprobs"]["content"]]
    assert streamed == whole["logprobs"]["content"]
    assert all(len(entry["top_logprobs"]) == 2 and entry["bytes"] == list(entry["token"].encode())
               for entry in streamed)


def test_chat_max_completion_tokens_overrides_max_tokens(client):
    body = chat(client, messages=user("the"), max_tokens=3, max_completion_tokens=1, seed=1).get_json()
    assert len(body["choices"][0]["message"]["content"].split()) <= 1
    assert body["choices"][0]["finish_reason"] in ("length", "stop")


@pytest.mark.parametrize("body, param, fragment", [
    ({"messages": []}, "messages", "non-empty array"),
    ({"messages": [{"role": "system", "content": "x"}]}, "messages", "user message"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages", "role must be one of"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}, "messages[0].content",
     "text parts"),
    ({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}, "top_logprobs", "needs logprobs"),
    ({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}, "tools", "not supported"),
    ({"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 0}, "max_completion_tokens",
     "between 1"),
])
def test_bad_chat_requests_are_400(client, body, param, fragment):
    assert_openai_error(chat(client, **body), 400, param, fragment)


# --------------------------------------------------------------- scoring with echo + logprobs
def harness_loglikelihood(client, context: str, continuation: str, max_tokens: int) -> tuple[float, list[float]]:
    """What lm-evaluation-harness's local-completions does for one log-likelihood request: the
    context and continuation sent as one prompt with echo, summing token_logprobs after the
    context's tokens (and before the one generated token, if max_tokens is 1)."""
    ctxlen = len(client.post("/tokenize", json={"inputs": context}).get_json())
    body = {"model": MODEL, "prompt": [context + continuation], "temperature": 0, "max_tokens": max_tokens,
            "logprobs": 1, "seed": 1234, "echo": True}
    choice = client.post("/v1/completions", json=body).get_json()["choices"][0]
    logprobs = choice["logprobs"]["token_logprobs"][ctxlen:-1] if max_tokens else \
        choice["logprobs"]["token_logprobs"][ctxlen:]
    return sum(logprobs), logprobs


@pytest.mark.parametrize("max_tokens", [0, 1])
def test_echo_scores_equal_score_for_the_continuation(client, max_tokens):
    context, continuation = "The cat sat on", " the red mat"
    total, per_token = harness_loglikelihood(client, context, continuation, max_tokens)
    scored = client.post("/score", json={"inputs": context + continuation}).get_json()["sentences"][0]["words"]
    assert [w["word"] for w in scored[4:7]] == ["the", "red", "mat"]
    assert per_token == [w["logprob"] for w in scored[4:7]]  # the same code: equal, not close
    assert total == sum(w["logprob"] for w in scored[4:7])


def test_echo_logprobs_cover_the_prompt_then_the_new_words(client):
    choice = client.post("/v1/completions", json={"model": MODEL, "prompt": "the cat", "echo": True, "logprobs": 2,
                                                  "max_tokens": 0}).get_json()["choices"][0]
    assert choice["text"] == "the cat" and choice["finish_reason"] == "length"
    logprobs = choice["logprobs"]
    assert logprobs["tokens"] == ["the", " cat"] and logprobs["text_offset"] == [0, 3]
    for token_logprob, top in zip(logprobs["token_logprobs"], logprobs["top_logprobs"]):
        assert len(top) == 2 and max(top.values()) >= token_logprob and math.isfinite(token_logprob)
    greedy = client.post("/v1/completions", json={"model": MODEL, "prompt": "the", "temperature": 0, "max_tokens": 1,
                                                  "logprobs": 1, "echo": True}).get_json()["choices"][0]
    # the greedy word's log-probability is the best alternative's at its step
    assert greedy["logprobs"]["token_logprobs"][-1] == max(greedy["logprobs"]["top_logprobs"][-1].values())


def test_tgi_prefill_scores_the_prompt_as_score_does(client):
    details = client.post("/generate", json={"inputs": "The cat sat on", "parameters": {
        "details": True, "decoder_input_details": True, "max_new_tokens": 3}}).get_json()["details"]
    words = client.post("/score", json={"inputs": "The cat sat on"}).get_json()["sentences"][0]["words"]
    tokens = client.post("/tokenize", json={"inputs": "The cat sat on"}).get_json()
    assert details["prefill"] == [{"id": t["id"], "text": t["text"], "logprob": w["logprob"]}
                                  for t, w in zip(tokens, words[:4])]
    plain = client.post("/generate", json={"inputs": "The cat", "parameters": {"details": True}}).get_json()
    assert plain["details"]["prefill"] == []


# ------------------------------------------------------------------------------- /tokenize
def test_tokenize_is_tgis_shape(client, tiny_loaded_model):
    vocab = tiny_loaded_model.vocab
    tokens = client.post("/tokenize", json={"inputs": "The cat, zebra!", "parameters": {"x": 1}}).get_json()
    assert [t["text"] for t in tokens] == ["The", "cat", ",", "zebra", "!"]
    assert [(t["start"], t["stop"]) for t in tokens] == [(0, 3), (4, 7), (7, 8), (9, 14), (14, 15)]
    assert tokens[1]["id"] == vocab.index["cat"] and tokens[3]["id"] == vocab.unknown_id


# ------------------------------------------------------------------- TGI's /info and headers
def test_timing_headers_on_whole_answers(client):
    response = client.post("/generate", json={"inputs": "the cat", "parameters": {"max_new_tokens": 5}})
    headers = response.headers
    assert headers["x-prompt-tokens"] == "2" and int(headers["x-generated-tokens"]) >= 1
    assert float(headers["x-compute-time"]) > 0
    for name in ("x-total-time", "x-validation-time", "x-queue-time", "x-inference-time", "x-time-per-token"):
        assert int(headers[name]) >= 0
    assert int(headers["x-total-time"]) >= int(headers["x-inference-time"])


# ------------------------------------------------------- the sampling transforms through HTTP
def test_logit_bias_and_penalties_reach_the_sampler(client, tiny_loaded_model):
    vocab = tiny_loaded_model.vocab
    cat = vocab.index["cat"]

    def words(**body) -> list[str]:
        return [w for seed in range(8) for w in client.post("/v1/completions", json={
            "model": MODEL, "prompt": "the", "max_tokens": 20, "seed": seed, **body}).get_json()["choices"][0]["text"]
            .split()]

    assert "cat" in words(logit_bias={str(cat): 5})
    assert "cat" not in words(logit_bias={str(cat): -100})
    plain, penalized = words(temperature=0), words(temperature=0, presence_penalty=2, frequency_penalty=2)
    assert len(set(penalized)) > len(set(plain))


def test_tgi_typical_p_and_frequency_penalty_change_the_draws(client):
    def text(**params) -> str:
        return client.post("/generate", json={"inputs": "the", "parameters": {
            "seed": 3, "max_new_tokens": 20, "do_sample": True, **params}}).get_json()["generated_text"]

    assert text(typical_p=0.2) != text() != text(frequency_penalty=2.0)
    # LangChain's HuggingFaceEndpoint defaults: typical_p 0.95 and max_new_tokens 512, taken
    assert client.post("/generate", json={"inputs": "the", "parameters": {
        "typical_p": 0.95, "max_new_tokens": 512, "temperature": 0.8, "top_p": 0.95}}).status_code == 200


def test_the_new_answers_fit_the_openapi_document(client):
    document = client.get("/openapi.json").get_json()
    chat_body = {"model": MODEL, "messages": user("the cat"), "seed": 1, "logprobs": True, "top_logprobs": 1}
    without_model = {key: value for key, value in chat_body.items() if key != "model"}  # optional, as TGI's
    check_response(document, "/v1/chat/completions", "POST", client.post("/v1/chat/completions", json=without_model))
    check_response(document, "/v1/chat/completions", "POST", client.post("/v1/chat/completions", json={
        **chat_body, "stream": True, "stream_options": {"include_usage": True}}))
    check_response(document, "/tokenize", "POST", client.post("/tokenize", json={"inputs": "The cat."}))
    check_response(document, "/v1/completions", "POST", client.post("/v1/completions", json={
        "model": MODEL, "prompt": ["the cat", "a dog"], "echo": True, "logprobs": 2, "max_tokens": 0}))
    check_response(document, "/info", "GET", client.get("/info"))

"""The HTTP API through Flask's test client: responses, every error path, configuration."""
from __future__ import annotations

import io
import json
import logging
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

import service.generation
from models.model_file import FORMAT_VERSION, ModelFileError, save_model
from service.app import create_app
from service.config import ConfigError, ServiceConfig
from service.model_info import MIXTURE_FIELDS
from tests.test_generation import toy_mixture
from tests.test_openapi import check_response

JSON = "application/json"


def post(client, body: Any, **kwargs: Any):
    return client.post("/generate", data=json.dumps(body), content_type=JSON, **kwargs)


def post_raw(client, data: str | bytes, content_type: str | None = JSON):
    headers = {} if content_type is None else {"Content-Type": content_type}
    return client.post("/generate", data=data, headers=headers)


def assert_error(response, status: int, *fragments: str, error_type: str = "validation") -> str:
    """The response is a JSON error with this status whose message contains every fragment."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == JSON
    body = response.get_json()
    assert set(body) == {"error", "error_type"}
    assert body["error_type"] == error_type
    for fragment in fragments:
        assert fragment in body["error"]
    return body["error"]


# ------------------------------------------------------------------------ successful requests
def test_generate_without_details(client):
    response = post(client, {"inputs": "the cat", "parameters": {"seed": 1, "num_sentences": 2}})
    assert response.status_code == 200
    assert response.mimetype == JSON
    body = response.get_json()
    assert list(body) == ["generated_text", "sentences"]
    assert len(body["sentences"]) == 2
    assert all(isinstance(s, str) for s in body["sentences"])
    assert body["sentences"][0].startswith("The cat")
    # TGI's default: the new text only; the sentences are whole, starting words included
    assert "The cat" + body["generated_text"] == " ".join(s for s in body["sentences"] if s)


def test_generate_with_details(client):
    body = post(client, {
        "inputs": "the zyzzyva sat",
        "parameters": {"seed": 5, "num_sentences": 3, "max_new_tokens": 10, "details": True},
    }).get_json()
    assert list(body) == ["generated_text", "sentences", "details"]
    details = body["details"]
    assert list(details) == ["finish_reason", "generated_tokens", "seed", "prefill", "tokens", "unknown_words"]
    assert details["finish_reason"] in ("eos_token", "length")
    assert details["seed"] == 5
    assert details["unknown_words"] == ["zyzzyva"]
    assert details["prefill"] == []
    assert details["generated_tokens"] == len(details["tokens"]) > 0
    for token in details["tokens"]:
        assert list(token) == ["id", "text", "logprob", "special"]
        assert isinstance(token["text"], str) and token["logprob"] < 0
        assert token["special"] == (token["id"] == 2) == (token["text"] == "")  # sentence ends
    assert "".join(t["text"] for t in details["tokens"]) == body["generated_text"]
    assert body["sentences"][0].startswith("The zyzzyva sat")
    assert "UNKNOWN_TOKEN" not in body["generated_text"]


def test_empty_body_uses_the_defaults(client):
    for body in ({}, {"inputs": None, "parameters": None}, {"parameters": {"details": True}}):
        response = post(client, body)
        assert response.status_code == 200
        assert len(response.get_json()["sentences"]) == 1


def test_default_max_new_tokens_is_50(client):
    response = post(client, {"parameters": {"seed": 3, "min_words": 50, "details": True}})
    details = response.get_json()["details"]
    assert details["generated_tokens"] == 50
    assert details["finish_reason"] == "length"


def test_max_new_tokens_applies_to_each_sentence(client):
    params = {"seed": 1, "num_sentences": 3, "max_new_tokens": 4, "min_words": 4, "details": True}
    details = post(client, {"parameters": params}).get_json()["details"]
    assert details["generated_tokens"] == 12
    assert details["finish_reason"] == "length"


def test_a_seed_reproduces_the_output(client):
    body = {"inputs": "a dog", "parameters": {"seed": 99, "num_sentences": 3, "details": True}}
    assert post(client, body).get_json() == post(client, body).get_json()


def test_without_a_seed_the_reported_seed_reproduces_the_output(client):
    first = post(client, {"parameters": {"details": True, "min_words": 20}}).get_json()
    second = post(client, {"parameters": {"details": True, "min_words": 20}}).get_json()
    assert first["details"]["seed"] != second["details"]["seed"]
    again = post(client, {"parameters": {"details": True, "min_words": 20, "seed": first["details"]["seed"]}})
    assert again.get_json() == first


def test_greedy_ignores_the_seed(client):
    texts = {
        post(client, {"parameters": {"do_sample": False, "seed": seed}}).get_json()["generated_text"]
        for seed in (1, 2, 3)
    }
    assert len(texts) == 1


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/problem+json"])
def test_json_content_types_are_accepted(client, content_type):
    assert post_raw(client, '{"inputs": "the"}', content_type).status_code == 200


@pytest.mark.parametrize("params", [
    {"max_new_tokens": 200, "min_words": 200},
    {"num_sentences": 20},
    {"min_words": 50},
    {"temperature": 100},
    {"temperature": 0.01},
    {"top_k": 1},
    {"top_k": 10**6},
    {"top_p": 1},
    {"top_p": 0.001},
    {"seed": 0},
    {"seed": 2**63 - 1},
    {"do_sample": False, "details": False},
])
def test_boundary_values_are_accepted(client, params):
    assert post(client, {"parameters": params}).status_code == 200


def test_longest_inputs_are_accepted(client):
    assert post(client, {"inputs": "cat " * 500}).status_code == 200


# ---------------------------------------------------------------------------------- 400
@pytest.mark.parametrize("data", [
    "{bad json", "", "{\"inputs\": \"the\"", "{'inputs': 'the'}",
    '{"parameters": {"temperature": NaN}}', '{"parameters": {"top_p": Infinity}}',
    b'{"inputs": "\xff\xfe"}', "[" * 50_000,
])
def test_malformed_json_is_400(client, data):
    assert_error(post_raw(client, data), 400, "malformed JSON")


@pytest.mark.parametrize("data, kind", [
    ("[]", "array"), ("null", "null"), ('"the cat"', "string"), ("3", "integer"), ("true", "boolean"),
])
def test_a_body_that_is_not_an_object_is_400(client, data, kind):
    assert_error(post_raw(client, data), 400, "JSON object", kind)


# ---------------------------------------------------------------------------------- 422
@pytest.mark.parametrize("field, value", [
    ("inputs", 3), ("inputs", ["the", "cat"]), ("inputs", True), ("inputs", {"text": "x"}),
    ("parameters", []), ("parameters", "seed=1"), ("parameters", 1),
])
def test_wrong_top_level_types_are_422(client, field, value):
    assert_error(post(client, {field: value}), 422, field, "must be")


@pytest.mark.parametrize("name, value", [
    ("max_new_tokens", True), ("max_new_tokens", "5"), ("max_new_tokens", 5.0), ("max_new_tokens", [5]),
    ("num_sentences", False), ("num_sentences", 2.5), ("num_sentences", "2"),
    ("min_words", True), ("min_words", "1"), ("min_words", 1.0),
    ("temperature", True), ("temperature", "hot"), ("temperature", [1.0]),
    ("top_k", True), ("top_k", 2.5), ("top_k", "3"),
    ("top_p", True), ("top_p", "0.5"), ("top_p", {"p": 0.5}),
    ("do_sample", 1), ("do_sample", "yes"), ("do_sample", 0.0),
    ("seed", True), ("seed", 1.5), ("seed", "7"),
    ("details", 1), ("details", "true"),
])
def test_wrong_parameter_types_are_422(client, name, value):
    assert_error(post(client, {"parameters": {name: value}}), 422, f"parameters.{name}", "must be")


@pytest.mark.parametrize("params, name", [
    ({"max_new_tokens": 0}, "max_new_tokens"),
    ({"max_new_tokens": -5}, "max_new_tokens"),
    ({"max_new_tokens": 2**32}, "max_new_tokens"),
    ({"num_sentences": 0}, "num_sentences"),
    ({"num_sentences": 21}, "num_sentences"),
    ({"min_words": -1}, "min_words"),
    ({"min_words": 51}, "min_words"),  # above the default max_new_tokens (50)
    ({"min_words": 11, "max_new_tokens": 10}, "min_words"),
    ({"temperature": 0}, "temperature"),
    ({"temperature": -1.0}, "temperature"),
    ({"temperature": 100.01}, "temperature"),
    ({"top_k": 0}, "top_k"),
    ({"top_k": -3}, "top_k"),
    ({"top_p": 0}, "top_p"),
    ({"top_p": -0.1}, "top_p"),
    ({"top_p": 1.0001}, "top_p"),
    ({"seed": -1}, "seed"),
    ({"seed": 2**63}, "seed"),
])
def test_out_of_range_parameters_are_422(client, params, name):
    message = assert_error(post(client, {"parameters": params}), 422, f"parameters.{name}", "must be")
    assert str(params[name]) in message


def test_an_infinite_number_is_422(client):
    # 1e400 is valid JSON that decodes to infinity
    assert_error(post_raw(client, '{"parameters": {"temperature": 1e400}}'), 422, "parameters.temperature")


def test_too_long_inputs_are_422(client):
    assert_error(post(client, {"inputs": "x" * 2001}), 422, "inputs", "2000", "2001")


def test_unknown_fields_are_ignored(client, caplog):
    # as TGI ignores them: a field a client adds later must not break it
    plain = post(client, {"inputs": "the", "parameters": {"seed": 1}}).get_json()
    with caplog.at_level("DEBUG", logger="service.params"):
        extra = post(client, {"inputs": "the", "stream": True, "future": 1,
                              "parameters": {"seed": 1, "max_tokens": 5, "stop_sequences": ["."]}})
        post(client, {"inputs": "the", "future": 1})
    assert extra.status_code == 200 and extra.get_json() == plain
    assert caplog.text.count("'future'") == 1  # logged once
    assert "parameters.stop_sequences" in caplog.text


# ------------------------------------------------------------------- other HTTP errors
def test_huge_body_is_413(client):
    response = post(client, {"inputs": "x" * 70_000})
    assert_error(response, 413, "65536")


@pytest.mark.parametrize("size, status", [(1000, 200), (65535, 200), (65536, 413), (70_000, 413)])
def test_streamed_body_without_length_is_capped(client, size, status):
    # a chunked upload, as gunicorn passes it on: no Content-Length, the server ends the stream
    data = json.dumps({"inputs": "the", "parameters": {"seed": 1}}).encode().ljust(size)
    response = client.post(
        "/generate", input_stream=io.BytesIO(data), content_type=JSON,
        environ_overrides={"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"},
    )
    assert response.request.content_length is None
    assert response.status_code == status


class _ReadsRecorded(io.BytesIO):
    """A request body stream that notes the size asked of each read."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.reads: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        self.reads.append(size)
        return super().read(size)


@pytest.mark.parametrize("size, status", [(1000, 200), (65536, 200), (65537, 413)])
def test_body_of_known_length_from_a_terminating_server(client, size, status):
    # gunicorn's way: a Content-Length, and the server ends the stream there (read in one call)
    data = json.dumps({"inputs": "the", "parameters": {"seed": 1}}).encode().ljust(size)
    stream = _ReadsRecorded(data)
    response = client.post("/generate", input_stream=stream, content_type=JSON,
                           environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": str(size)})
    assert response.status_code == status
    if status == 200:
        assert stream.reads == [size]
        assert response.get_json() == post(client, {"inputs": "the", "parameters": {"seed": 1}}).get_json()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415(client, content_type):
    assert_error(post_raw(client, '{"inputs": "the"}', content_type), 415, "Content-Type", "application/json")


@pytest.mark.parametrize("path", ["/nope", "/generate/", "/v2/generate"])
def test_unknown_route_is_json_404(client, path):
    assert_error(client.get(path), 404, path, "POST /generate", error_type="not_found")


@pytest.mark.parametrize("method, path", [("get", "/generate"), ("put", "/generate"), ("post", "/health"),
                                          ("delete", "/info")])
def test_wrong_method_is_json_405(client, method, path):
    response = getattr(client, method)(path)
    assert_error(response, 405, method.upper(), path, error_type="method_not_allowed")
    assert response.headers["Allow"]


def test_unexpected_errors_are_500_without_internals(app, monkeypatch, caplog):
    generator = app.extensions["rnnlm"].generator

    def explode(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(generator, "start_all", explode)
    with caplog.at_level(logging.ERROR):
        response = post(app.test_client(), {"inputs": "the"})
    text = assert_error(response, 500, error_type="internal")
    assert "secret" not in response.get_data(as_text=True) and "Traceback" not in text
    assert "secret internal detail" in caplog.text  # the log has it


@pytest.mark.parametrize("data", [
    '{"inputs": "\\u0000\\ud800"}', '{"inputs": "!!! ??? ..."}', '{"inputs": "   "}',
    '{"parameters": {"seed": 99999999999999999999999999}}', '{"parameters": {"top_k": 1e308}}',
    '{"parameters": {"temperature": 1e-320}}',
    '{"parameters": {"temperature": 123456789012345678901234567890}}',
    '{"inputs": "a", "inputs": 3}', '{"parameters": {"": 1}}', '{"\\u0000": 1}',
    '{"parameters": {"top_k": 33, "top_p": 0.5, "temperature": 0.001}}',
])
def test_odd_requests_never_cause_a_500(client, data):
    assert post_raw(client, data).status_code < 500


# ------------------------------------------------------------------------- health and info
def test_health(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_info(client, tiny_loaded_model, tiny_model_path):
    info = client.get("/info").get_json()
    assert info["vocabulary_size"] == len(tiny_loaded_model.vocab) == 35
    assert info["hidden_size"] == 8
    assert info["bptt_truncate"] == 4
    assert info["parameter_count"] == 2 * 35 * 8 + 8 * 8 + 8 + 35
    assert info["format_version"] == FORMAT_VERSION
    assert info["softmax"] == "full" and info["word_classes"] is None
    assert info["cell"] == "rnn"
    assert info["model_file"] == tiny_model_path.name
    assert info["corpus"] == "tiny-test-corpus"
    assert info["train_words"] == 1234
    assert info["val_perplexity"] == 33.5
    assert info["trained_at"] == "2024-01-02T03:04:05+00:00"
    assert info["history"] == tiny_loaded_model.info["history"] and [e["halved"] for e in info["history"]] == [
        False, False, True, False, True]
    assert info["limits"] == {"max_new_tokens": 200, "max_sentences": 20, "max_request_words": 1000,
                              "max_input_chars": 2000, "max_body_bytes": 65536}
    # TGI's Info fields that mean something here
    assert {key: info[key] for key in ("model_id", "model_device_type", "model_pipeline_tag", "max_best_of",
                                       "max_stop_sequences", "max_total_tokens", "max_client_batch_size",
                                       "max_concurrent_requests", "model_sha", "router")} == {
        "model_id": "rnnlm", "model_device_type": "cpu", "model_pipeline_tag": "text-generation", "max_best_of": 4,
        "max_stop_sequences": 4, "max_total_tokens": 1000, "max_client_batch_size": 32,
        "max_concurrent_requests": 12, "model_sha": None, "router": "rnnlm"}
    assert info["version"] == "0.1.0" and info["model_dtype"] in ("float32", "float64")


def test_info_reports_the_mixture_and_its_cache(tmp_path, tiny_loaded_model):
    path = tmp_path / "mixed.joblib"
    mixture = replace(toy_mixture(len(tiny_loaded_model.vocab)), cache_weight=0.02, cache_size=50)
    save_model(path, tiny_loaded_model.model, tiny_loaded_model.vocab, {}, mixture)
    client = create_app(ServiceConfig(model_path=str(path))).test_client()
    info = client.get("/info")
    assert {key: info.get_json()[key] for key in ("ngram_order", "ngram_weight", "cache_weight", "cache_size")} == {
        "ngram_order": 3, "ngram_weight": 0.5, "cache_weight": 0.02, "cache_size": 50}
    check_response(client.get("/openapi.json").get_json(), "/info", "GET", info)


def test_info_reports_no_mixture_as_null(tmp_path, tiny_loaded_model):
    path = tmp_path / "plain.joblib"
    save_model(path, tiny_loaded_model.model, tiny_loaded_model.vocab, {})
    client = create_app(ServiceConfig(model_path=str(path))).test_client()
    info = client.get("/info")
    assert {key: info.get_json()[key] for key in MIXTURE_FIELDS} == {key: None for key in MIXTURE_FIELDS}
    check_response(client.get("/openapi.json").get_json(), "/info", "GET", info)


def test_info_with_missing_or_odd_training_facts(tmp_path, tiny_loaded_model):
    path = tmp_path / "odd.joblib"
    odd_info = {"val_perplexity": float("inf"), "train_words": np.int64(7)}
    save_model(path, tiny_loaded_model.model, tiny_loaded_model.vocab, odd_info)
    info = create_app(ServiceConfig(model_path=str(path))).test_client().get("/info")
    assert info.status_code == 200

    def reject(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    body = json.loads(info.get_data(), parse_constant=reject)
    assert body["val_perplexity"] is None and body["train_words"] == 7 and body["corpus"] is None
    assert body["history"] == []


def test_info_history_is_made_json_safe(tmp_path, tiny_loaded_model):
    path = tmp_path / "diverged.joblib"
    first, second = tiny_loaded_model.info["history"][:2]
    diverged = {**second, "val_perplexity": math.inf, "train_words": np.int64(600), "halved": np.bool_(True)}
    save_model(path, tiny_loaded_model.model, tiny_loaded_model.vocab, {"history": [first, diverged]})
    client = create_app(ServiceConfig(model_path=str(path))).test_client()
    body = json.loads(client.get("/info").get_data(), parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert body["history"] == [first, {**second, "val_perplexity": None, "halved": True}]
    check_response(client.get("/openapi.json").get_json(), "/info", "GET", client.get("/info"))


# ------------------------------------------------------------------------------ configuration
def test_configured_limits_are_enforced(service_config):
    config = replace(service_config, max_new_tokens=10, max_sentences=2, max_body_bytes=2048)
    client = create_app(config).test_client()
    # the default max_new_tokens (50) shrinks to the cap; a larger one is taken and cut there
    details = post(client, {"parameters": {"min_words": 10, "details": True}}).get_json()["details"]
    assert details["generated_tokens"] == 10
    details = post(client, {"parameters": {"max_new_tokens": 512, "min_words": 10, "details": True}}).get_json()
    assert details["details"]["generated_tokens"] == 10 and details["details"]["finish_reason"] == "length"
    details = post(client, {"parameters": {"max_new_tokens": 20, "min_words": 20, "details": True}}).get_json()
    assert details["details"]["generated_tokens"] == 10  # min_words beyond the cap: the sentence ends there
    assert_error(post(client, {"parameters": {"num_sentences": 3}}), 422, "num_sentences", "2")
    assert_error(post(client, {"inputs": "x" * 2100}), 413, "2048")
    assert client.get("/info").get_json()["limits"]["max_new_tokens"] == 10


def test_config_from_env_defaults():
    assert ServiceConfig.from_env({}) == ServiceConfig(
        model_path="artifacts/model.joblib", max_new_tokens=200, max_sentences=20,
        max_body_bytes=65536, log_level="INFO",
    )


def test_config_from_env_values():
    config = ServiceConfig.from_env({
        "RNNLM_MODEL": "/m.joblib", "RNNLM_MAX_NEW_TOKENS": "30", "RNNLM_MAX_SENTENCES": " 4 ",
        "RNNLM_MAX_BODY_BYTES": "4096", "RNNLM_LOG_LEVEL": "debug",
    })
    assert config == ServiceConfig("/m.joblib", 30, 4, 4096, "DEBUG")
    assert ServiceConfig.from_env({"RNNLM_MAX_NEW_TOKENS": ""}).max_new_tokens == 200  # blank = unset


@pytest.mark.parametrize("name, value", [
    ("RNNLM_MAX_NEW_TOKENS", "many"), ("RNNLM_MAX_NEW_TOKENS", "0"), ("RNNLM_MAX_SENTENCES", "2.5"),
    ("RNNLM_MAX_BODY_BYTES", "-1"), ("RNNLM_LOG_LEVEL", "loud"),
])
def test_config_from_env_rejects_bad_values(name, value):
    with pytest.raises(ConfigError) as error:
        ServiceConfig.from_env({name: value})
    assert name in str(error.value) and repr(value) in str(error.value)


def test_missing_model_stops_create_app(tmp_path):
    with pytest.raises(ModelFileError, match="no such file"):
        create_app(ServiceConfig(model_path=str(tmp_path / "absent.joblib")))


def test_sampler_is_built_once_per_app(service_config, monkeypatch):
    built = []
    real_sampler = service.generation.Sampler

    def counting_sampler(*args):
        built.append(args)
        return real_sampler(*args)

    monkeypatch.setattr(service.generation, "Sampler", counting_sampler)
    client = create_app(service_config).test_client()
    for seed in range(3):
        assert post(client, {"parameters": {"seed": seed}}).status_code == 200
    assert len(built) == 1

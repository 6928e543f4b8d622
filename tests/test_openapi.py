"""GET /openapi.json: a valid OpenAPI 3.1 document of every route, which real requests and
responses of every route (errors and streams included) are validated against."""
from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi

from service.app import create_app
from service.config import ServiceConfig
from service.errors import _OPENAI_TYPES
from service.params import OPENAI_COMPLETION, TGI_PARAMETERS, FieldSpec
from tests.busy_engine import busy_engine
from tests.sse import sse_data

IGNORED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture(scope="module")
def doc(app) -> dict[str, Any]:
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def validator(doc: dict, schema: dict) -> Draft202012Validator:
    """A validator of ``schema`` whose #/components/... references resolve in ``doc``."""
    return Draft202012Validator({**schema, "components": doc["components"]})


def check_response(doc: dict, path: str, method: str, response) -> None:
    """The response's status and media type are documented, and its body fits the schema."""
    operation = doc["paths"][path][method.lower()]
    documented = operation["responses"]
    assert str(response.status_code) in documented, f"{method} {path} {response.status_code} is undocumented"
    content = documented[str(response.status_code)].get("content", {})
    assert response.mimetype in content, f"{method} {path} answered {response.mimetype}"
    media = content[response.mimetype]
    if response.mimetype == "application/json":
        validator(doc, media["schema"]).validate(response.get_json())
    elif response.mimetype == "text/event-stream":
        events = sse_data(response.get_data(as_text=True))
        assert events
        for event in events:
            validator(doc, media["x-sse-data"]).validate(event)
    else:
        validator(doc, media["schema"]).validate(response.get_data(as_text=True))


def test_the_document_is_valid_openapi_3_1(doc):
    assert doc["openapi"].startswith("3.1")
    validate_openapi(doc)


def test_every_route_is_documented_and_nothing_else(app, doc):
    served = {
        (rule.rule.replace("<path:model_id>", "{model_id}"), method.lower())
        for rule in app.url_map.iter_rules() if rule.endpoint != "static"
        for method in (rule.methods or set()) - IGNORED_METHODS
    }
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert served == documented


def test_every_schema_is_a_valid_json_schema(doc):
    for name, schema in doc["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)


JSON_CALLS = [
    ("POST", "/generate", {"inputs": "the cat", "parameters": {"seed": 1, "details": True}}),
    ("POST", "/generate", {"parameters": {"seed": 1, "details": True, "best_of": 3, "top_n_tokens": 2,
                                          "stop": ["dog"], "num_sentences": 3, "return_full_text": True}}),
    ("POST", "/generate", {}),
    ("POST", "/generate", {"parameters": {"top_p": 3}}),
    ("POST", "/generate", {"parameters": {"watermark": True}}),
    ("POST", "/generate", {"inputs": "x" * 70_000}),
    ("POST", "/", {"inputs": "a", "parameters": {"details": True, "seed": 2}}),
    ("POST", "/", {"stream": "no"}),
    ("POST", "/generate_stream", {"parameters": {"best_of": 2}}),
    ("POST", "/v1/completions", {"model": "rnnlm", "prompt": "the", "max_tokens": 5}),
    ("POST", "/v1/completions", {"model": "rnnlm", "prompt": ["the", "a"], "n": 2, "logprobs": 3, "echo": True,
                                 "stop": "."}),
    ("POST", "/v1/completions", {"model": "rnnlm", "temperature": 9}),
    ("POST", "/v1/completions", {"model": "gpt-4"}),
    ("POST", "/v1/completions", {"model": "rnnlm", "stream_options": {}}),
    ("POST", "/score", {"inputs": "The cat sat. A zyzzyva ran."}),
    ("POST", "/score", {"inputs": ""}),
    ("POST", "/score", {"inputs": 3}),
]


@pytest.mark.parametrize("method, path, body", JSON_CALLS)
def test_json_answers_fit_their_schemas(client, doc, method, path, body):
    check_response(doc, path, method, client.open(path, method=method, json=body))


@pytest.mark.parametrize("path, body", [
    ("/generate_stream", {"inputs": "the", "parameters": {"seed": 3, "top_n_tokens": 3, "stop": ["a"]}}),
    ("/generate_stream", {"parameters": {"seed": 4, "num_sentences": 3}}),
    ("/", {"stream": True, "parameters": {"seed": 5}}),
    ("/v1/completions", {"model": "rnnlm", "stream": True, "n": 2, "logprobs": 2, "echo": True,
                         "stream_options": {"include_usage": True}}),
    ("/v1/completions", {"model": "rnnlm", "stream": True}),
])
def test_streamed_events_fit_their_schemas(client, doc, path, body):
    response = client.post(path, json=body)
    assert response.mimetype == "text/event-stream"
    check_response(doc, path, "POST", response)


@pytest.mark.parametrize("path", ["/", "/health", "/info", "/metrics", "/openapi.json", "/v1/models",
                                  "/v1/models/rnnlm", "/v1/models/other"])
def test_get_answers_fit_their_schemas(client, doc, path):
    documented = "/v1/models/{model_id}" if path.startswith("/v1/models/") else path
    check_response(doc, documented, "GET", client.get(path))


@pytest.mark.parametrize("path, data, content_type", [
    ("/generate", "{", "application/json"), ("/generate", "{}", "text/plain"),
    ("/v1/completions", "[]", "application/json"), ("/v1/completions", "{}", "text/plain"),
    ("/score", "{}", "text/plain"), ("/", "nope", "application/json"),
])
def test_malformed_requests_fit_their_error_schemas(client, doc, path, data, content_type):
    check_response(doc, path, "POST", client.post(path, data=data, content_type=content_type))


def test_overload_answers_fit_their_schemas(service_config, doc):
    app = create_app(replace(service_config, max_concurrent_requests=0))  # scoring refused at once
    client = app.test_client()
    with busy_engine(app):
        for path, body in [("/generate", {}), ("/", {}), ("/generate_stream", {}), ("/score", {"inputs": "a"}),
                           ("/v1/completions", {"model": "rnnlm"})]:
            response = client.post(path, json=body)
            assert response.status_code == 429
            check_response(doc, path, "POST", response)


# ----------------------------------------------------- the request schemas say what is accepted
REQUESTS = [
    ("GenerateRequest", {"inputs": "a", "parameters": {"stop": ["x"], "repetition_penalty": 1.2, "best_of": 2,
                                                       "do_sample": True}}),
    ("GenerateRequest", {"parameters": {"watermark": False, "truncate": None, "top_n_tokens": 5}}),
    ("GenerateRequest", {"parameters": {"stop": ["a", "b", "c", "d", "e"]}}),
    ("GenerateRequest", {"parameters": {"repetition_penalty": 0}}),
    ("GenerateRequest", {"parameters": {"top_n_tokens": 6}}),
    ("GenerateRequest", {"parameters": {"watermark": True}}),
    ("GenerateRequest", {"parameters": {"temperature": 0}}),
    ("GenerateRequest", {"stream": True, "future_field": [1]}),  # unknown fields are ignored
    ("CompatGenerateRequest", {"stream": True, "parameters": {"seed": 1}}),
    ("CompatGenerateRequest", {"stream": "yes"}),
    ("CompletionRequest", {"model": "rnnlm", "prompt": ["a"], "stop": "x", "temperature": 0, "n": 4}),
    ("CompletionRequest", {"model": "rnnlm", "temperature": 2.5}),
    ("CompletionRequest", {"model": "rnnlm", "n": 5}),
    ("CompletionRequest", {"model": "rnnlm", "logprobs": 6}),
    ("CompletionRequest", {"model": "rnnlm", "presence_penalty": 0.5}),
    ("CompletionRequest", {"model": "rnnlm", "logit_bias": {}}),
    ("CompletionRequest", {"model": "rnnlm", "logit_bias": {"3": -100, "4": 2.5}}),
    ("CompletionRequest", {"model": "rnnlm", "logit_bias": {"a": 1}}),
    ("CompletionRequest", {"model": "rnnlm", "max_tokens": 0}),
    ("CompletionRequest", {"model": "rnnlm", "max_tokens": 0, "echo": True, "logprobs": 1}),
    ("CompletionRequest", {"model": "rnnlm", "prompt": ["a"] * 33}),
    ("CompletionRequest", {"prompt": "a"}),  # no model: the served one
    ("CompletionRequest", {"model": None, "prompt": "a"}),
    ("CompletionRequest", {"model": "other", "prompt": "a"}),
    ("ScoreRequest", {"inputs": "text"}),
    ("ScoreRequest", {"inputs": 3}),
]
ROUTE_OF = {"GenerateRequest": "/generate", "CompatGenerateRequest": "/", "CompletionRequest": "/v1/completions",
            "ScoreRequest": "/score"}


@pytest.mark.parametrize("schema, body", REQUESTS)
def test_a_body_fits_the_request_schema_exactly_when_the_server_accepts_it(client, doc, schema, body):
    fits = validator(doc, {"$ref": f"#/components/schemas/{schema}"}).is_valid(body)
    status = client.post(ROUTE_OF[schema], data=json.dumps(body), content_type="application/json").status_code
    assert fits == (status == 200), f"schema says {fits}, server answered {status}"


def boundary_values(spec: FieldSpec, config: ServiceConfig) -> list[Any]:
    """Values at and just beyond each declared bound of a numeric field."""
    low = spec.minimum(config) if callable(spec.minimum) else spec.minimum
    high = spec.maximum(config) if callable(spec.maximum) else spec.maximum
    step = 1 if spec.kind == "integer" else 1e-9
    values = [v for bound in (low, high) if bound is not None for v in (bound - step, bound, bound + step)]
    return values + ([True, "1"] if spec.kind in ("integer", "number") else [])


def bounded_fields() -> list[tuple[str, str, str]]:
    fields = [("GenerateParameters", spec.name, spec.kind) for spec in TGI_PARAMETERS]
    fields += [("CompletionRequest", spec.name, spec.kind) for spec in OPENAI_COMPLETION]
    return [f for f in fields if f[2] in ("integer", "number")]


@pytest.mark.parametrize("schema, name, kind", bounded_fields())
def test_every_declared_bound_is_what_the_server_enforces(app, client, doc, schema, name, kind):
    """Both families' fields come from one set of specs: at and beyond every bound, the
    generated schema accepts a value exactly when the server does."""
    config = app.extensions["rnnlm"].config
    specs = {spec.name: spec for spec in (TGI_PARAMETERS if schema == "GenerateParameters" else OPENAI_COMPLETION)}
    for value in boundary_values(specs[name], config):
        if schema == "GenerateParameters":
            # sampling, which best_of needs
            body, route, full = ({"parameters": {"max_new_tokens": 3, "do_sample": True, name: value}}, "/generate",
                                 "GenerateRequest")
        else:
            body, route, full = {"model": "rnnlm", "max_tokens": 3, name: value}, "/v1/completions", schema
        fits = validator(doc, {"$ref": f"#/components/schemas/{full}"}).is_valid(body)
        status = client.post(route, data=json.dumps(body), content_type="application/json").status_code
        assert fits == (status == 200), f"{name}={value!r}: schema says {fits}, server answered {status}"


def test_every_error_type_the_code_can_send_is_documented(doc):
    """The error types named anywhere in the service's code are in the documented enums, and
    every OpenAI type they map to is in OpenAIError's."""
    source = "\n".join(path.read_text() for path in (Path(__file__).parents[1] / "service").glob("*.py"))
    named = set(re.findall(r'error_type="(\w+)"', source)) | set(re.findall(r'"error_type": "(\w+)"', source))
    named |= set(re.findall(r'error_body\(\d+, [^\n]*?, "(\w+)"', source))
    assert {"timeout", "generation", "overloaded", "internal", "not_found"} <= named  # the scan finds them
    schemas = doc["components"]["schemas"]
    assert named <= set(schemas["Error"]["properties"]["error_type"]["enum"])
    openai_types = set(schemas["OpenAIError"]["properties"]["error"]["properties"]["type"]["enum"])
    assert set(_OPENAI_TYPES.values()) | {"server_error", "invalid_request_error"} <= openai_types

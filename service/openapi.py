"""The OpenAPI 3.1 document served at /openapi.json: every route, its request and its responses.

Schemas are JSON Schema 2020-12 (as OpenAPI 3.1 has it). Response schemas are closed
(``additionalProperties: false``) and the tests validate real responses against them, so a field
added to a response without being documented here fails a test; request schemas are open, as
the server ignores fields it does not know. Limits come from the running configuration.
Streamed routes document their event payloads under the media type's ``x-sse-data``: each
``data:`` line of the stream holds one value of that schema.
"""
from __future__ import annotations

from typing import Any

from models.cells import CELLS
from service.config import ServiceConfig
from service.params import (
    MAX_INPUT_CHARS, OPENAI_CHAT, OPENAI_COMPLETION, TGI_BODY, TGI_COMPAT_BODY, TGI_PARAMETERS, object_schema,
)
from service.score_api import MAX_SCORE_CHARS

JSON = "application/json"
SSE = "text/event-stream"
FINISH_REASONS = ["eos_token", "length", "stop_sequence"]


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def closed(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """An object schema with exactly these properties (all required unless told otherwise)."""
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else required,
            "additionalProperties": False, **extra}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {JSON: {"schema": schema}}


def response(description: str, content: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, **({"content": content} if content else {})}


_COMMON_ERRORS = {
    "413": "Body larger than RNNLM_MAX_BODY_BYTES",
    "415": "Content-Type is not JSON",
    "429": "No room: the engine's queue is full (RNNLM_MAX_QUEUE) or the request could not start before its "
           "time limit; scoring: RNNLM_MAX_CONCURRENT_REQUESTS in flight. Retry-After says when to try again",
}


_TIMEOUT = "A generation or scoring stopped at the per-request time limit (RNNLM_REQUEST_TIMEOUT_SECONDS)"


def _errors(schema: str, statuses: dict[str, str]) -> dict[str, Any]:
    """The error responses of an operation, sorted by status, each with ``schema`` as its body."""
    every = {**statuses, **_COMMON_ERRORS}
    return {status: response(every[status], json_content(ref(schema))) for status in sorted(every)}


_FAILED = "The model failed while generating (the fault is logged on the server), as TGI answers it"
_TIMING_HEADERS = {name: {"description": description, "schema": {"type": "string"}} for name, description in (
    ("x-compute-time", "Seconds the request took, to its answer"),
    ("x-total-time", "Milliseconds the request took"), ("x-validation-time", "Milliseconds checking the body"),
    ("x-queue-time", "Milliseconds waiting for room in the engine's batch"),
    ("x-inference-time", "Milliseconds generating"), ("x-time-per-token", "Milliseconds per generated token"),
    ("x-prompt-tokens", "Words of the prompt"), ("x-generated-tokens", "Tokens generated (words and sentence ends)"),
    ("x-compute-type", "cpu+numpy"), ("x-compute-characters", "Characters of the prompt as the model read it"))}


def _generation_errors(errors: dict[str, Any], schema: str) -> dict[str, Any]:
    """A generation route's errors: those of its family, and TGI's 424 for a failed generation."""
    return dict(sorted({**errors, "424": response(_FAILED, json_content(ref(schema)))}.items()))


def _tgi_errors() -> dict[str, Any]:
    return _errors("Error", {"400": "Malformed JSON, or a body that is not a JSON object",
                             "422": "A field of the wrong type or out of range, or a request that must generate "
                                    "more words than RNNLM_MAX_REQUEST_WORDS", "503": _TIMEOUT})


def _openai_errors() -> dict[str, Any]:
    return _errors("OpenAIError", {"400": "Malformed JSON, a field of the wrong type or out of range, or a request "
                                          "that must generate more words than RNNLM_MAX_REQUEST_WORDS",
                                   "404": "The model is not this service's", "503": _TIMEOUT})


def _schemas(config: ServiceConfig) -> dict[str, Any]:
    token = closed({"id": {"type": "integer"}, "text": {"type": "string"}, "logprob": {"type": "number"},
                    "special": {"type": "boolean"}},
                   description="A word, or a sentence end (special, no text)")
    sequence = {
        "finish_reason": {"enum": FINISH_REASONS},
        "generated_tokens": {"type": "integer", "minimum": 1},
        "seed": {"type": "integer"},
        "prefill": {"type": "array", "items": closed({"id": {"type": "integer"}, "text": {"type": "string"},
                                                      "logprob": {"type": "number"}}),
                    "description": "The prompt's words scored (with decoder_input_details), else empty"},
        "tokens": {"type": "array", "items": ref("Token")},
        "top_tokens": {"type": "array", "items": {"type": "array", "items": ref("Token")}},
    }
    required_sequence = ["finish_reason", "generated_tokens", "seed", "prefill", "tokens"]
    return {
        "GenerateParameters": object_schema(TGI_PARAMETERS, config),
        "GenerateRequest": object_schema(TGI_BODY, config),
        "CompatGenerateRequest": object_schema(TGI_COMPAT_BODY, config),
        "Token": token,
        "BestOfSequence": closed({"generated_text": {"type": "string"}, **sequence},
                                 required=["generated_text", *required_sequence]),
        "Details": closed({**sequence,
                           "best_of_sequences": {"type": "array", "items": ref("BestOfSequence")},
                           "unknown_words": {"type": "array", "items": {"type": "string"}}},
                          required=[*required_sequence, "unknown_words"]),
        "GenerateResponse": closed({"generated_text": {"type": "string"},
                                    "sentences": {"type": "array", "items": {"type": "string"}},
                                    "details": ref("Details")}, required=["generated_text", "sentences"]),
        "StreamDetails": closed({"finish_reason": {"enum": FINISH_REASONS},
                                 "generated_tokens": {"type": "integer", "minimum": 1},
                                 "seed": {"type": "integer"}, "input_length": {"type": "integer"},
                                 "unknown_words": {"type": "array", "items": {"type": "string"}}}),
        "StreamResponse": closed({"index": {"type": "integer", "minimum": 1}, "token": ref("Token"),
                                  "top_tokens": {"type": "array", "items": ref("Token")},
                                  "generated_text": {"type": ["string", "null"]},
                                  "details": nullable(ref("StreamDetails"))},
                                 required=["index", "token", "generated_text", "details"],
                                 description="One event per token; the last carries generated_text and details"),
        "StreamError": closed({"error": {"type": "string"}, "error_type": {"enum": ["generation", "timeout"]}},
                              description="Sent instead of further tokens if generation fails or reaches the time "
                                          "limit mid-stream"),
        "Error": closed({"error": {"type": "string"},
                         "error_type": {"enum": ["validation", "overloaded", "not_found", "method_not_allowed",
                                                 "timeout", "generation", "internal"]}}),
        "CompletionRequest": {**object_schema(OPENAI_COMPLETION, config),
                              # max_tokens 0 only with echo: the prompt scored, nothing generated
                              "if": {"properties": {"max_tokens": {"const": 0}}, "required": ["max_tokens"]},
                              "then": {"properties": {"echo": {"const": True}}, "required": ["echo"]}},
        **_chat_schemas(config),
        "TokenizeRequest": {"type": "object",
                            "properties": {"inputs": {"type": ["string", "null"], "maxLength": MAX_INPUT_CHARS}}},
        "SimpleToken": closed({"id": {"type": "integer", "description": "The word's number in the vocabulary"},
                               "text": {"type": "string"}, "start": {"type": "integer"}, "stop": {"type": "integer"}}),
        "CompletionLogprobs": closed({
            "tokens": {"type": "array", "items": {"type": "string"}},
            "token_logprobs": {"type": "array", "items": {"type": "number"}},
            "top_logprobs": nullable({"type": "array", "items": {"type": "object",
                                                                 "additionalProperties": {"type": "number"}}}),
            "text_offset": {"type": "array", "items": {"type": "integer"}},
        }),
        "CompletionChoice": closed({"text": {"type": "string"}, "index": {"type": "integer"},
                                    "logprobs": nullable(ref("CompletionLogprobs")),
                                    "finish_reason": {"enum": ["stop", "length"]}}),
        "Usage": closed({"prompt_tokens": {"type": "integer"}, "completion_tokens": {"type": "integer"},
                         "total_tokens": {"type": "integer"}}),
        "Completion": closed({**_completion_envelope(), "choices": {"type": "array", "items": ref("CompletionChoice")},
                              "usage": ref("Usage")}),
        "CompletionChunk": closed({
            **_completion_envelope(),
            "choices": {"type": "array", "maxItems": 1, "items": closed({
                "text": {"type": "string"}, "index": {"type": "integer"},
                "logprobs": nullable(ref("CompletionLogprobs")),
                "finish_reason": {"enum": ["stop", "length", None]}})},
            "usage": ref("Usage"),
        }, required=["id", "object", "created", "model", "choices"],
            description="One event per word, one with the finish_reason per choice, one with only the usage "
                        "if stream_options.include_usage; the stream ends with the event [DONE]"),
        "Model": closed({"id": {"type": "string"}, "object": {"const": "model"}, "created": {"type": "integer"},
                         "owned_by": {"type": "string"}}),
        "ModelList": closed({"object": {"const": "list"}, "data": {"type": "array", "items": ref("Model")}}),
        "OpenAIError": closed({"error": closed({
            "message": {"type": "string"},
            "type": {"enum": ["invalid_request_error", "overloaded_error", "timeout_error", "server_error"]},
            "param": {"type": ["string", "null"]},
            "code": {"enum": ["model_not_found", "overloaded", None]},
        })}),
        "ScoreRequest": {"type": "object", "properties": {"inputs": {"type": "string", "maxLength": MAX_SCORE_CHARS}},
                         "required": ["inputs"], "description": "Other fields are ignored"},
        "WordScore": closed({"word": {"type": "string"}, "logprob": {"type": "number"},
                             "oov": {"type": "boolean", "description": "Out of the vocabulary: scored as "
                                                                      "UNKNOWN_TOKEN"},
                             "special": {"type": "boolean", "description": "The sentence end"}}),
        "SentenceScore": closed({"words": {"type": "array", "items": ref("WordScore")},
                                 "logprob": {"type": "number"}, "perplexity": {"type": ["number", "null"]}}),
        "ScoreResponse": closed({"sentences": {"type": "array", "items": ref("SentenceScore")},
                                 "tokens": {"type": "integer"}, "logprob": {"type": "number"},
                                 "perplexity": {"type": ["number", "null"],
                                                "description": "exp(mean negative log-likelihood per token); "
                                                               "null for a text without words"},
                                 "oov_words": {"type": "array", "items": {"type": "string"}}}),
        "Health": closed({"status": {"const": "ok"}}),
        "Info": _info_schema(),
        "Evaluation": closed({
            "train_words": {"type": ["integer", "null"], "description": "Training words seen by then"},
            "seconds": {"type": ["number", "null"], "description": "Training time by then"},
            "val_loss": {"type": ["number", "null"]},
            "val_perplexity": {"type": ["number", "null"]},
            "learning_rate": {"type": ["number", "null"], "description": "The rate after this evaluation"},
            "halved": {"type": ["boolean", "null"], "description": "This evaluation halved the learning rate"},
        }),
    }


def _completion_envelope() -> dict[str, Any]:
    return {"id": {"type": "string"}, "object": {"const": "text_completion"}, "created": {"type": "integer"},
            "model": {"type": "string"}}


def _info_schema() -> dict[str, Any]:
    number_or_null = {"type": ["number", "null"]}
    return closed({
        "model_id": {"type": "string"}, "model_file": {"type": "string"}, "format_version": {"type": "integer"},
        "vocabulary_size": {"type": "integer"}, "cell": {"type": "string", "enum": list(CELLS)},
        "hidden_size": {"type": "integer"},
        "bptt_truncate": {"type": ["integer", "null"]}, "parameter_count": {"type": "integer"},
        "softmax": {"type": "string", "enum": ["full", "class"]}, "word_classes": {"type": ["integer", "null"]},
        "ngram_order": {"type": ["integer", "null"]}, "ngram_weight": {"type": ["number", "null"]},
        "cache_weight": {"type": ["number", "null"],
                         "description": "the unigram cache's share of the mixture (0: no cache); null without an n-gram model"},
        "cache_size": {"type": ["integer", "null"], "description": "the recent tokens the cache counts"},
        "rnn_val_perplexity": {"type": ["number", "null"]}, "ngram_val_perplexity": {"type": ["number", "null"]},
        "corpus": {"type": ["string", "null"]}, "train_words": {"type": ["integer", "null"]},
        "val_perplexity": number_or_null, "val_loss": number_or_null,
        "trained_at": {"type": ["string", "null"]}, "seconds": number_or_null,
        "history": {"type": "array", "items": ref("Evaluation"),
                    "description": "The validation evaluations during training, oldest first (the RNN's alone, "
                                   "before any n-gram interpolation); empty if the file holds none"},
        "limits": closed({name: {"type": "integer"} for name in
                          ("max_new_tokens", "max_sentences", "max_request_words", "max_input_chars",
                           "max_body_bytes")}),
        # TGI's Info fields that mean something here (service/model_info.py says how)
        "model_sha": {"type": ["string", "null"], "description": "RNNLM_MODEL_SHA256, when one is pinned"},
        "model_dtype": {"type": "string"}, "model_device_type": {"const": "cpu"},
        "model_pipeline_tag": {"const": "text-generation"},
        **{name: {"type": "integer"} for name in ("max_concurrent_requests", "max_best_of", "max_stop_sequences",
                                                  "max_batch_size", "max_client_batch_size")},
        "max_total_tokens": {"type": "integer", "description": "Words one request may generate "
                                                               "(RNNLM_MAX_REQUEST_WORDS)"},
        "router": {"const": "rnnlm"}, "version": {"type": "string"},
    })


def _chat_schemas(config: ServiceConfig) -> dict[str, Any]:
    envelope = {"id": {"type": "string"}, "created": {"type": "integer"}, "model": {"type": "string"},
                "system_fingerprint": {"type": "string"}}
    top = closed({"token": {"type": "string"}, "logprob": {"type": "number"},
                  "bytes": {"type": "array", "items": {"type": "integer"}}})
    logprobs = nullable(closed({"content": {"type": "array", "items": closed({
        "token": {"type": "string"}, "logprob": {"type": "number"},
        "bytes": {"type": "array", "items": {"type": "integer"}}, "top_logprobs": {"type": "array", "items": top}})}}))
    return {
        "ChatCompletionRequest": object_schema(OPENAI_CHAT, config, required=["messages"]),
        "ChatCompletion": closed({
            **envelope, "object": {"const": "chat.completion"},
            "choices": {"type": "array", "items": closed({
                "index": {"type": "integer"},
                "message": closed({"role": {"const": "assistant"}, "content": {"type": "string"}}),
                "logprobs": logprobs, "finish_reason": {"enum": ["stop", "length"]}})},
            "usage": ref("Usage")}),
        "ChatCompletionChunk": closed({
            **envelope, "object": {"const": "chat.completion.chunk"},
            "choices": {"type": "array", "maxItems": 1, "items": closed({
                "index": {"type": "integer"},
                "delta": closed({"role": {"const": "assistant"}, "content": {"type": "string"}}, required=[]),
                "logprobs": logprobs, "finish_reason": {"enum": ["stop", "length", None]}})},
            "usage": ref("Usage")}, required=["id", "object", "created", "model", "system_fingerprint", "choices"],
            description="The role first, then one event per word, one with the finish_reason per choice, one with "
                        "only the usage if stream_options.include_usage; the stream ends with the event [DONE]"),
    }


def _tgi_operation(summary: str, request_schema: str, ok: dict[str, Any]) -> dict[str, Any]:
    return {"tags": ["text-generation-inference"], "summary": summary,
            "requestBody": {"required": True, "content": json_content(ref(request_schema))},
            "responses": {"200": ok, **_generation_errors(_tgi_errors(), "Error")}}


def _openai_operation(summary: str, request_schema: str, answer: str, chunk: str) -> dict[str, Any]:
    return {
        "tags": ["openai"], "summary": summary,
        "requestBody": {"required": True, "content": json_content(ref(request_schema))},
        "responses": {"200": {**response("The answer, or Server-Sent Events when stream is true", {
            JSON: {"schema": ref(answer)},
            SSE: {"schema": {"type": "string"}, "x-sse-data": {"oneOf": [
                ref(chunk), ref("OpenAIError"), {"const": "[DONE]"}]}},
        }), "headers": _TIMING_HEADERS}, **_generation_errors(_openai_errors(), "OpenAIError")},
    }


def _stream_content(*event_schemas: dict[str, Any]) -> dict[str, Any]:
    return {SSE: {"schema": {"type": "string"}, "x-sse-data": {"oneOf": list(event_schemas)}}}


def _paths() -> dict[str, Any]:
    stream_ok = response("Server-Sent Events, one per token", _stream_content(ref("StreamResponse"),
                                                                             ref("StreamError")))
    return {
        "/": {
            "get": {"tags": ["playground"], "summary": "The playground page",
                    "responses": {"200": response("HTML", {"text/html": {"schema": {"type": "string"}}})}},
            "post": _tgi_operation(
                "TGI's compatibility route: generate, or stream if the body's stream is true",
                "CompatGenerateRequest",
                response("A list of one answer, or Server-Sent Events when stream is true", {
                    JSON: {"schema": {"type": "array", "minItems": 1, "maxItems": 1,
                                      "items": ref("GenerateResponse")}},
                    **_stream_content(ref("StreamResponse"), ref("StreamError")),
                })),
        },
        "/generate": {"post": _tgi_operation("Generate sentences", "GenerateRequest", {
            **response("The answer", json_content(ref("GenerateResponse"))), "headers": _TIMING_HEADERS})},
        "/generate_stream": {"post": _tgi_operation("Generate sentences, streamed", "GenerateRequest", stream_ok)},
        "/v1/completions": {"post": _openai_operation("OpenAI-compatible completions", "CompletionRequest",
                                                      "Completion", "CompletionChunk")},
        "/v1/chat/completions": {"post": _openai_operation(
            "OpenAI-compatible chat: the answer continues the last user message (see the README)",
            "ChatCompletionRequest", "ChatCompletion", "ChatCompletionChunk")},
        "/v1/models": {"get": {"tags": ["openai"], "summary": "The model served",
                               "responses": {"200": response("One model", json_content(ref("ModelList")))}}},
        "/v1/models/{model_id}": {"get": {
            "tags": ["openai"], "summary": "One model",
            "parameters": [{"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": response("The model", json_content(ref("Model"))),
                          "404": response("Not this service's model", json_content(ref("OpenAIError")))},
        }},
        "/score": {"post": {
            "tags": ["scoring"], "summary": "Per-word log-probabilities and perplexities of a text",
            "requestBody": {"required": True, "content": json_content(ref("ScoreRequest"))},
            "responses": {"200": response("The scores", json_content(ref("ScoreResponse"))), **_tgi_errors()},
        }},
        "/tokenize": {"post": {
            "tags": ["text-generation-inference"], "summary": "The words of a prompt as generation reads them",
            "requestBody": {"required": True, "content": json_content(ref("TokenizeRequest"))},
            "responses": {"200": response("Each word with its vocabulary number and place in the text",
                                          json_content({"type": "array", "items": ref("SimpleToken")})),
                          **_tgi_errors()},
        }},
        "/health": {"get": {"tags": ["operations"], "summary": "Ready once the model is loaded",
                            "responses": {"200": response("Ready", json_content(ref("Health")))}}},
        "/info": {"get": {"tags": ["operations"], "summary": "The model, its training history and the request limits",
                          "responses": {"200": response("Facts", json_content(ref("Info")))}}},
        "/metrics": {"get": {"tags": ["operations"], "summary": "Prometheus metrics, all workers added up",
                             "responses": {"200": response("Prometheus text format",
                                                           {"text/plain": {"schema": {"type": "string"}}})}}},
        "/openapi.json": {"get": {"tags": ["operations"], "summary": "This document",
                                  "responses": {"200": response("OpenAPI 3.1", json_content({"type": "object"}))}}},
    }


def openapi_document(config: ServiceConfig) -> dict[str, Any]:
    """The document for a service running with ``config``."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "rnnlm",
            "version": "0.1.0",
            "summary": "A word-level RNN language model in NumPy, with TGI- and OpenAI-compatible APIs",
        },
        "paths": _paths(),
        "components": {"schemas": _schemas(config)},
    }

"""The OpenAI-compatible routes: POST /v1/completions and GET /v1/models[/<id>].

Requests are checked like OpenAI's (unknown fields refused, ``model`` required and must be this
service's id) and answered in its shapes, streamed as ``data:`` events ending in
``data: [DONE]``. Errors on /v1/ are OpenAI's ``{"error": {"message", "type", "param",
"code"}}`` (see service.errors). Each choice is one sentence; ``temperature`` 0 means greedy.
``top_k`` and ``repetition_penalty`` are accepted as extensions, as vLLM does.
"""
from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from flask import Response, jsonify, request

from models.sampling import SamplingParams
from models.text import tokenize_words
from service import checks
from service.errors import ApiError
from service.errors import openai_error_body
from service.generation import (
    GenerationTimeout,
    MAX_SEED, GeneratedToken, Generation, GenerationRequest, GenerationResult, fresh_seed, nth_seed,
)
from service.http_body import json_body
from service.sse import event_stream, sse_event
from service.state import ServiceState, current_state
from service.validation import (
    MAX_INPUT_CHARS, MAX_REPETITION_PENALTY, MAX_STOP_CHARS, MAX_STOP_SEQUENCES, MAX_TOP_N_TOKENS,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 16  # OpenAI's default
FIELDS = (
    "model", "prompt", "max_tokens", "temperature", "top_p", "n", "stop", "seed", "logprobs", "echo",
    "stream", "stream_options", "user", "top_k", "repetition_penalty",
)
# OpenAI's other fields, with the only value each may take here besides null
NEUTRAL_FIELDS: dict[str, Any] = {"presence_penalty": 0, "frequency_penalty": 0, "best_of": 1, "suffix": None}


@dataclass(frozen=True)
class CompletionCall:
    prompts: list[str]
    request: GenerationRequest  # the sampling settings (its ``inputs`` unused)
    n: int
    logprobs: int | None
    echo: bool
    stream: bool
    include_usage: bool


def completions() -> Response:
    """POST /v1/completions."""
    state = current_state()
    call = parse_completion(json_body(), state)
    if call.stream:
        return _stream(state, call)
    results = state.generate_admitted(
        request.url_rule.rule, lambda: _all_choices(state, call),
    )
    body = _envelope(state)
    body["choices"] = [_choice(call, i, call.prompts[i // call.n], r) for i, r in enumerate(results)]
    body["usage"] = _usage(call, results)
    return jsonify(body)


def list_models() -> Response:
    """GET /v1/models: the one model this service serves."""
    return jsonify({"object": "list", "data": [_model_card(current_state())]})


def retrieve_model(model_id: str) -> Response:
    """GET /v1/models/<id>."""
    state = current_state()
    if model_id != state.config.model_id:
        raise _model_not_found(model_id, "model_id")
    return jsonify(_model_card(state))


def _model_card(state: ServiceState) -> dict[str, Any]:
    return {"id": state.config.model_id, "object": "model", "created": state.created, "owned_by": "rnnlm"}


def _model_not_found(model: str, field: str) -> ApiError:
    return ApiError(404, f"The model {checks.shorten(model)!r} does not exist; this service serves "
                         f"{current_state().config.model_id!r}", error_type="not_found", field=field)


# --------------------------------------------------------------------------------- parsing
def parse_completion(body: Any, state: ServiceState) -> CompletionCall:
    """Check a decoded /v1/completions body; problems are 400 (as OpenAI's), model 404."""
    try:
        return _parse(checks.json_object(body), state)
    except ApiError as error:
        if error.status == 422:
            error.status = 400
        raise


def _parse(body: dict, state: ServiceState) -> CompletionCall:
    config = state.config
    checks.reject_unknown(body, FIELDS + tuple(NEUTRAL_FIELDS), "field", "")
    for name, neutral in NEUTRAL_FIELDS.items():
        value = body.get(name)
        if value is not None and not (neutral is not None and not isinstance(value, bool) and value == neutral):
            raise ApiError(422, f"{name} is not supported by this model; it may only be null"
                                + ("" if neutral is None else f" or {neutral}"), field=name)
    if "model" not in body or body["model"] is None:
        raise ApiError(422, "model is required", field="model")
    model = checks.text("model", body["model"], 200)
    if model != config.model_id:
        raise _model_not_found(model, "model")
    prompts = _prompts(checks.field(body, "prompt", ""))
    n = checks.integer("n", checks.field(body, "n", 1), 1, config.max_sequences)
    if n * len(prompts) > config.max_sequences:
        raise ApiError(422, f"n times the number of prompts must be at most {config.max_sequences}, "
                            f"got {n * len(prompts)}", field="n")
    max_tokens = checks.integer(
        "max_tokens", checks.field(body, "max_tokens", min(DEFAULT_MAX_TOKENS, config.max_new_tokens)),
        1, config.max_new_tokens,
    )
    checks.word_budget({"prompts": len(prompts), "n": n, "max_tokens": max_tokens}, config.max_request_words)
    temperature = checks.number("temperature", checks.field(body, "temperature", 1.0), 2.0, low_included=True)
    top_p = checks.number("top_p", checks.field(body, "top_p", 1.0), 1.0)
    top_k = checks.optional(body.get("top_k"), lambda v: checks.integer("top_k", v, 1, None))
    repetition_penalty = checks.number(
        "repetition_penalty", checks.field(body, "repetition_penalty", 1.0), MAX_REPETITION_PENALTY,
    )
    stop = checks.stop_strings("stop", checks.field(body, "stop", []), MAX_STOP_SEQUENCES, MAX_STOP_CHARS,
                               allow_single=True)
    seed = checks.optional(body.get("seed"), lambda v: checks.integer("seed", v, 0, MAX_SEED))
    logprobs = checks.optional(body.get("logprobs"), lambda v: checks.integer("logprobs", v, 0, MAX_TOP_N_TOKENS))
    echo = checks.boolean("echo", checks.field(body, "echo", False))
    stream = checks.boolean("stream", checks.field(body, "stream", False))
    include_usage = _include_usage(body.get("stream_options"), stream)
    if body.get("user") is not None:
        checks.text("user", body["user"], 256)

    sampling = SamplingParams(
        max_new_tokens=max_tokens, temperature=temperature or 1.0, top_k=top_k,
        top_p=None if top_p == 1.0 else top_p, do_sample=temperature > 0,
    )
    settings = GenerationRequest("", sampling, 1, seed, repetition_penalty, stop, logprobs or 0)
    return CompletionCall(prompts, settings, n, logprobs, echo, stream, include_usage)


def _prompts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [checks.text("prompt", value, MAX_INPUT_CHARS)]
    if not isinstance(value, list) or not value:
        raise ApiError(422, "prompt must be a string or a non-empty array of strings "
                            f"(token arrays are not supported), got {checks.json_type(value)}", field="prompt")
    return [checks.text("prompt", item, MAX_INPUT_CHARS) for item in value]


def _include_usage(options: Any, stream: bool) -> bool:
    if options is None:
        return False
    if not stream:
        raise ApiError(422, "stream_options is only allowed when stream is true", field="stream_options")
    if not isinstance(options, dict):
        raise checks.wrong_type("stream_options", "an object", options)
    checks.reject_unknown(options, ("include_usage",), "field", "stream_options.")
    return checks.boolean("stream_options.include_usage", checks.field(options, "include_usage", False))


# ------------------------------------------------------------------------------ answering
def _settings_for(call: CompletionCall, prompt: str, seed: int | None) -> GenerationRequest:
    return replace(call.request, inputs=prompt, seed=seed)


def _all_choices(state: ServiceState, call: CompletionCall) -> list[GenerationResult]:
    """Every prompt's ``n`` choices, within one time limit for the whole request."""
    deadline = state.generator.deadline()
    return [result for prompt in call.prompts
            for result in state.generator.generate_several(_settings_for(call, prompt, call.request.seed), call.n, deadline)]


def _envelope(state: ServiceState) -> dict[str, Any]:
    return {
        "id": f"cmpl-{secrets.token_hex(12)}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": state.config.model_id,
    }


def _finish_reason(result: GenerationResult) -> str:
    return "length" if result.finish_reason == "length" else "stop"


def _choice(call: CompletionCall, index: int, prompt: str, result: GenerationResult) -> dict[str, Any]:
    echoed = prompt if call.echo else ""
    words = [t for t in result.tokens if not t.special]
    return {
        "text": echoed + result.new_text,
        "index": index,
        "logprobs": None if call.logprobs is None else _logprobs(call, words, len(echoed)),
        "finish_reason": _finish_reason(result),
    }


def _logprobs(call: CompletionCall, tokens: list[GeneratedToken], offset: int) -> dict[str, Any]:
    """OpenAI's legacy logprobs object for the generated words (the prompt is not scored)."""
    offsets = []
    for token in tokens:
        offsets.append(offset)
        offset += len(token.text)
    return {
        "tokens": [t.text for t in tokens],
        "token_logprobs": [t.logprob for t in tokens],
        "top_logprobs": [{a.text: a.logprob for a in t.alternatives} for t in tokens] if call.logprobs else None,
        "text_offset": offsets,
    }


def _usage(call: CompletionCall, results: list[GenerationResult]) -> dict[str, int]:
    prompt_tokens = sum(len(tokenize_words(p)) for p in call.prompts)
    completion_tokens = sum(r.generated_tokens for r in results)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def _stream(state: ServiceState, call: CompletionCall) -> Response:
    release = state.admit()
    route = request.url_rule.rule
    envelope = _envelope(state)
    seed = fresh_seed() if call.request.seed is None else call.request.seed
    deadline = state.generator.deadline()
    generations = [
        state.generator.start(_settings_for(call, prompt, nth_seed(seed, i)), deadline)
        for prompt in call.prompts for i in range(call.n)
    ]

    def chunk(index: int, text: str, logprobs: Any, finish: str | None) -> bytes:
        choice = {"text": text, "index": index, "logprobs": logprobs, "finish_reason": finish}
        return sse_event({**envelope, "choices": [choice]})

    def events() -> Iterator[bytes]:
        try:
            yield from choices()
        except GenerationTimeout as exc:
            yield sse_event(openai_error_body(503, str(exc), "timeout", None))
        except Exception:  # the status line is sent already: report in the stream
            logger.exception("generation failed while streaming")
            yield sse_event(openai_error_body(500, "internal server error", "internal", None))

    def choices() -> Iterator[bytes]:
        started = time.perf_counter()
        for index, generation in enumerate(generations):
            prompt = call.prompts[index // call.n]
            offset = 0
            if call.echo:
                yield chunk(index, prompt, None, None)
                offset = len(prompt)
            for token in _words(generation):
                logprobs = None if call.logprobs is None else _logprobs(call, [token], offset)
                offset += len(token.text)
                yield chunk(index, token.text, logprobs, None)
            yield chunk(index, "", None, _finish_reason(generation.result))
        results = [g.result for g in generations]
        state.metrics.observe_generation(
            route, sum(r.generated_words for r in results), time.perf_counter() - started,
        )
        if call.include_usage:
            yield sse_event({**envelope, "choices": [], "usage": _usage(call, results)})
        yield sse_event("[DONE]")

    return event_stream(events(), release)


def _words(generation: Generation) -> Iterator[GeneratedToken]:
    return (token for token in generation if not token.special)

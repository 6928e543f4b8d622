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
    GeneratedToken, Generation, GenerationRequest, GenerationResult, GenerationTimeout, fresh_seed, run_all, several,
)
from service.http_body import json_body
from service.params import OPENAI_COMPLETION, model_not_found, parse_fields
from service.sse import event_stream, sse_event
from service.state import ServiceState, current_state

logger = logging.getLogger(__name__)


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
        raise model_not_found(model_id, "model_id", state.config)
    return jsonify(_model_card(state))


def _model_card(state: ServiceState) -> dict[str, Any]:
    return {"id": state.config.model_id, "object": "model", "created": state.created, "owned_by": "rnnlm"}


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
    p = parse_fields(body, OPENAI_COMPLETION, state.config)
    checks.word_budget({"prompts": len(p["prompt"]), "n": p["n"], "max_tokens": p["max_tokens"]},
                       state.config.max_request_words)
    temperature = p["temperature"]
    sampling = SamplingParams(
        max_new_tokens=p["max_tokens"], temperature=temperature or 1.0, top_k=p["top_k"],
        top_p=None if p["top_p"] == 1.0 else p["top_p"], do_sample=temperature > 0,
    )
    settings = GenerationRequest("", sampling, 1, p["seed"], p["repetition_penalty"], p["stop"], p["logprobs"] or 0)
    return CompletionCall(p["prompt"], settings, p["n"], p["logprobs"], p["echo"], p["stream"], p["stream_options"])


# ------------------------------------------------------------------------------ answering
def _all_choices(state: ServiceState, call: CompletionCall) -> list[GenerationResult]:
    """Every prompt's ``n`` choices, generated together within one time limit."""
    return run_all(state.generator.start_all(_requests(call)))


def _requests(call: CompletionCall) -> list[GenerationRequest]:
    """Every choice's request: each prompt's n seeds are seed, seed + 1, ... (one seed for all)."""
    seed = fresh_seed() if call.request.seed is None else call.request.seed
    return [request for prompt in call.prompts
            for request in several(replace(call.request, inputs=prompt, seed=seed), call.n)]


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
    route = request.url_rule.rule
    envelope = _envelope(state)
    generations = state.generator.start_all(_requests(call), stream=True)
    release = state.count_in_flight(lambda: [g.close() for g in generations])

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

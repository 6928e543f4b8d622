"""The OpenAI-compatible routes: POST /v1/completions and GET /v1/models[/<id>], and what
POST /v1/chat/completions (service.chat_api) shares with them.

Requests are checked like OpenAI's (unknown fields ignored, ``model`` required and must be this
service's id) and answered in its shapes, streamed as ``data:`` events ending in
``data: [DONE]``. Errors on /v1/ are OpenAI's ``{"error": {"message", "type", "param",
"code"}}`` (see service.errors). Each choice is one sentence; ``temperature`` 0 means greedy.
``top_k`` and ``repetition_penalty`` are accepted as extensions, as vLLM does. ``echo`` with
``logprobs`` scores the prompt's words (lm-evaluation-harness's log-likelihood requests).
"""
from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from flask import Response, request

from models.sampling import SamplingParams
from models.text import tokenize_words
from service import checks
from service.errors import ApiError, openai_error_body
from service.generation import (
    GeneratedToken, Generation, GenerationFailed, GenerationRequest, GenerationResult, GenerationTimeout, run_all,
    several,
)
from service.http_body import json_body
from service.params import OPENAI_COMPLETION, model_not_found, parse_fields
from service.prompt_tokens import prompt_tokens
from service.response import json_response
from service.sse import event_stream, sse_event
from service.state import ServiceState, current_state
from service.timing_headers import add_timing_headers

T = TypeVar("T")

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
    generate: bool  # false for max_tokens 0 (with echo: the prompt scored, nothing generated)


def completions() -> Response:
    """POST /v1/completions."""
    state = current_state()
    call = parse_completion(json_body(), state)
    validated = time.perf_counter()
    if call.stream:
        return _stream(state, call)
    results = state.generate_admitted(request.url_rule.rule, lambda: _all_choices(state, call))
    body = envelope(state, "cmpl", "text_completion")
    body["choices"] = [_choice(state, call, i, call.prompts[i // call.n], r) for i, r in enumerate(results)]
    body["usage"] = usage(call.prompts, results)
    return add_timing_headers(json_response(body), validated, results, body["usage"]["prompt_tokens"])


def list_models() -> Response:
    """GET /v1/models: the one model this service serves."""
    return json_response({"object": "list", "data": [_model_card(current_state())]})


def retrieve_model(model_id: str) -> Response:
    """GET /v1/models/<id>."""
    state = current_state()
    if model_id != state.config.model_id:
        raise model_not_found(model_id, "model_id", state.config)
    return json_response(_model_card(state))


def _model_card(state: ServiceState) -> dict[str, Any]:
    return {"id": state.config.model_id, "object": "model", "created": state.created, "owned_by": "rnnlm"}


# --------------------------------------------------------------------------------- parsing
def as_openai_status(parse: Callable[[], T]) -> T:
    """Run a parse; a field at fault is OpenAI's 400 (not TGI's 422), the model a 404."""
    try:
        return parse()
    except ApiError as error:
        if error.status == 422:
            error.status = 400
        raise


def parse_completion(body: Any, state: ServiceState) -> CompletionCall:
    """Check a decoded /v1/completions body."""
    return as_openai_status(lambda: _parse(checks.json_object(body), state))


def _parse(body: dict, state: ServiceState) -> CompletionCall:
    p = parse_fields(body, OPENAI_COMPLETION, state.config)
    if p["max_tokens"] == 0 and not p["echo"]:
        raise ApiError(422, "max_tokens 0 is only allowed with echo (to score the prompt)", field="max_tokens")
    share = checks.word_budget({"prompts x n": len(p["prompt"]) * p["n"]}, state.config.max_request_words)
    settings = GenerationRequest("", openai_sampling(p, p["max_tokens"], state), 1, p["seed"], p["repetition_penalty"],
                                 p["stop"], p["logprobs"] or 0, share)
    return CompletionCall(p["prompt"], settings, p["n"], p["logprobs"], p["echo"], p["stream"], p["stream_options"],
                          p["max_tokens"] > 0)


def openai_sampling(p: dict[str, Any], max_tokens: int, state: ServiceState) -> SamplingParams:
    """The sampling settings of an OpenAI body (completions or chat); temperature 0 is greedy."""
    vocabulary_size = len(state.generator.vocab)
    for word_id, _ in p["logit_bias"]:
        if word_id >= vocabulary_size:
            raise ApiError(422, f"logit_bias key {word_id} is not a word id: the vocabulary numbers its "
                                f"{vocabulary_size} words from 0", field="logit_bias")
    temperature = p["temperature"]
    return SamplingParams(
        max_new_tokens=max(1, min(max_tokens, state.config.max_new_tokens)), temperature=temperature or 1.0,
        top_k=p["top_k"], top_p=None if p["top_p"] == 1.0 else p["top_p"], do_sample=temperature > 0,
        frequency_penalty=p["frequency_penalty"], presence_penalty=p["presence_penalty"], logit_bias=p["logit_bias"],
    )


# ------------------------------------------------------------------------------ answering
def _all_choices(state: ServiceState, call: CompletionCall) -> list[GenerationResult]:
    """Every prompt's ``n`` choices, generated together within one time limit."""
    if not call.generate:
        return [nothing_generated(r) for r in _requests(call)]
    return run_all(state.generator.start_all(_requests(call)))


def nothing_generated(request: GenerationRequest) -> GenerationResult:
    """The result of a choice that generates no word (max_tokens 0)."""
    return GenerationResult([], [], request.seed or 0, [], request.inputs, "")


def _requests(call: CompletionCall) -> list[GenerationRequest]:
    """Every choice's request: each prompt's n seeds are seed, seed + 1, ... (a given seed is
    every prompt's, so each prompt sent alone with it gives the same text; without one, each
    prompt draws its own, so a batch of equal prompts gives different texts)."""
    return [request for prompt in call.prompts
            for request in several(replace(call.request, inputs=prompt), call.n)]


def envelope(state: ServiceState, id_prefix: str, kind: str) -> dict[str, Any]:
    return {
        "id": f"{id_prefix}-{secrets.token_hex(12)}",
        "object": kind,
        "created": int(time.time()),
        "model": state.config.model_id,
    }


def finish_reason(result: GenerationResult, generated: bool = True) -> str:
    """OpenAI's finish_reason: ``length`` when a length (or max_tokens 0) ended it, else ``stop``."""
    return "length" if result.finish_reason == "length" or not generated else "stop"


def _choice(state: ServiceState, call: CompletionCall, index: int, prompt: str,
            result: GenerationResult) -> dict[str, Any]:
    echoed = prompt if call.echo else ""
    logprobs = None
    if call.logprobs is not None:
        logprobs = _join_logprobs(_prompt_logprobs(state, call, prompt), _logprobs(call, _words(result.tokens),
                                                                                   len(echoed)))
    return {"text": echoed + result.new_text, "index": index, "logprobs": logprobs,
            "finish_reason": finish_reason(result, call.generate)}


def _prompt_logprobs(state: ServiceState, call: CompletionCall, prompt: str) -> dict[str, Any]:
    """The logprobs object of the echoed prompt: each word scored after the words before it, as
    POST /score scores a sentence; a word's text runs from the end of the word before it."""
    if not call.echo:
        return _logprobs(call, [], 0)
    tokens = prompt_tokens(state.generator.vocab, prompt)
    scored = state.scorer.score_words([t.word for t in tokens], call.logprobs or 0)
    words = state.generator.vocab.words
    starts = [0] + [t.stop for t in tokens[:-1]]
    return {
        "tokens": [prompt[start:t.stop] for start, t in zip(starts, tokens)],
        "token_logprobs": [logprob for logprob, _ in scored],
        "top_logprobs": [{words[i]: lp for i, lp in top} for _, top in scored] if call.logprobs else None,
        "text_offset": starts,
    }


def _join_logprobs(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    return {key: None if first[key] is None else first[key] + second[key] for key in first}


def _logprobs(call: CompletionCall, tokens: list[GeneratedToken], offset: int) -> dict[str, Any]:
    """OpenAI's legacy logprobs object for generated words, the first at ``offset`` in the text."""
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


def usage(prompts: list[str], results: list[GenerationResult]) -> dict[str, int]:
    """OpenAI's usage: the prompts' words (each prompt once) and the tokens generated."""
    prompt_tokens = sum(len(tokenize_words(p)) for p in prompts if p.strip())  # (NLTK costs ~0.1 ms even on "")
    completion_tokens = sum(r.generated_tokens for r in results)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def _stream(state: ServiceState, call: CompletionCall) -> Response:
    envelope_ = envelope(state, "cmpl", "text_completion")
    requests = _requests(call)
    generations = state.generator.start_all(requests, stream=True) if call.generate else []

    def chunk(index: int, text: str, logprobs: Any, finish: str | None) -> bytes:
        choice = {"text": text, "index": index, "logprobs": logprobs, "finish_reason": finish}
        return sse_event({**envelope_, "choices": [choice]})

    def choices() -> Iterator[bytes]:
        results = []
        for index, choice_request in enumerate(requests):
            prompt = choice_request.inputs
            offset = 0
            if call.echo:
                logprobs = None if call.logprobs is None else _prompt_logprobs(state, call, prompt)
                yield chunk(index, prompt, logprobs, None)
                offset = len(prompt)
            if not call.generate:
                results.append(nothing_generated(choice_request))
                yield chunk(index, "", None, "length")
                continue
            generation = generations[index]
            for token in _words(generation):
                logprobs = None if call.logprobs is None else _logprobs(call, [token], offset)
                offset += len(token.text)
                yield chunk(index, token.text, logprobs, None)
            results.append(generation.result)
            yield chunk(index, "", None, finish_reason(generation.result))
        yield from usage_and_done(call.include_usage, envelope_, call.prompts, results)

    return openai_event_stream(state, generations, choices())


def usage_and_done(include_usage: bool, envelope_: dict[str, Any], prompts: list[str],
                   results: list[GenerationResult]) -> Iterator[bytes]:
    """The last events of an OpenAI stream: the usage if asked for, then [DONE]."""
    if include_usage:
        yield sse_event({**envelope_, "choices": [], "usage": usage(prompts, results)})
    yield sse_event("[DONE]")


def openai_event_stream(state: ServiceState, generations: list[Generation], events: Iterator[bytes]) -> Response:
    """A stream of OpenAI events; a failure after the status line is sent is reported as an
    error event (OpenAI's error object), its words counted either way."""
    route = request.url_rule.rule
    release = state.count_in_flight(lambda: [g.close() for g in generations])

    def guarded() -> Iterator[bytes]:
        started = time.perf_counter()
        try:
            yield from events
        except GenerationTimeout as exc:
            yield sse_event(openai_error_body(503, str(exc), "timeout", None))
        except GenerationFailed as exc:
            yield sse_event(openai_error_body(424, str(exc), "generation", None))
        except Exception:  # the status line is sent already: report in the stream
            logger.exception("generation failed while streaming")
            yield sse_event(openai_error_body(500, "internal server error", "internal", None))
        finally:
            words = sum(g.result.generated_words for g in generations if g.finished)
            state.metrics.observe_generation(route, words, time.perf_counter() - started)

    return event_stream(guarded(), release)


def _words(tokens: Iterable[GeneratedToken]) -> list[GeneratedToken]:
    return [token for token in tokens if not token.special]

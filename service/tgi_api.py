"""The text-generation-inference routes: POST /generate, POST /generate_stream and POST /
(which picks one of the two by the body's ``stream`` field, as TGI does).

Responses follow TGI's shapes: tokens carry ``id``, ``text``, ``logprob`` and ``special``
(sentence ends are special tokens with no text); ``details`` adds ``prefill`` (the prompt's
words scored, with ``decoder_input_details``), ``top_tokens`` and ``best_of_sequences`` when
asked for. The
rnnlm extras ``sentences`` and ``details.unknown_words`` stay.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from flask import Response, request

from models.logits_processors import tgi_samples
from models.sampling import SamplingParams
from service import checks
from service.config import ServiceConfig
from service.errors import ApiError
from service.generation import (
    GeneratedToken, GenerationFailed, GenerationRequest, GenerationResult, GenerationTimeout,
)
from service.http_body import json_body
from service.params import TGI_BODY, TGI_COMPAT_BODY, TGI_PARAMETERS, parse_fields
from service.prompt_tokens import prompt_tokens
from service.response import json_response
from service.sse import event_stream, sse_event
from service.state import ServiceState, current_state
from service.timing_headers import add_timing_headers

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerateCall:
    """A checked TGI request: what to generate and how to answer."""

    request: GenerationRequest
    details: bool
    decoder_input_details: bool
    return_full_text: bool
    best_of: int
    stream: bool


def parse_generate(
    body: Any, config: ServiceConfig, *, stream: bool, full_text_default: bool, stream_field: bool = False
) -> GenerateCall:
    """Check a decoded TGI body (400 if not an object, 422 for a field at fault).

    ``stream`` is the route's own choice; ``stream_field`` lets the body choose instead (POST /).
    """
    top = parse_fields(checks.json_object(body), TGI_COMPAT_BODY if stream_field else TGI_BODY, config)
    stream = top["stream"] if stream_field else stream
    params = {} if top["parameters"] is None else top["parameters"]
    if not isinstance(params, dict):
        raise checks.wrong_type("parameters", "an object", params)
    p = parse_fields(params, TGI_PARAMETERS, config, kind="parameter", prefix="parameters.")
    typical_p = None if p["typical_p"] == 1.0 else p["typical_p"]
    do_sample = tgi_samples(p["do_sample"], p["temperature"], p["top_k"], p["top_p"], typical_p)
    if p["best_of"] > 1 and not do_sample:
        raise ApiError(422, "parameters.best_of > 1 needs sampling: set do_sample, or a temperature, top_k, "
                            "top_p or typical_p that samples", field="parameters.best_of")
    if p["best_of"] > 1 and stream:
        raise ApiError(422, "parameters.best_of > 1 is not allowed when streaming", field="parameters.best_of")
    max_new_tokens = min(p["max_new_tokens"], config.max_new_tokens)
    min_words = min(p["min_words"], max_new_tokens)
    share = checks.word_budget({"parameters.best_of": p["best_of"], "parameters.num_sentences": p["num_sentences"],
                                "parameters.min_words": min_words}, config.max_request_words)
    sampling = SamplingParams(
        max_new_tokens=max_new_tokens, min_words=min_words,
        temperature=p["temperature"], top_k=p["top_k"], top_p=p["top_p"], typical_p=typical_p, do_sample=do_sample,
        frequency_penalty=p["frequency_penalty"],
    )
    request = GenerationRequest(top["inputs"], sampling, p["num_sentences"], p["seed"], p["repetition_penalty"],
                                p["stop"], p["top_n_tokens"], share)
    full_text = full_text_default if p["return_full_text"] is None else p["return_full_text"]
    return GenerateCall(request, p["details"], p["decoder_input_details"], full_text, p["best_of"], stream)


def generate() -> Response:
    """POST /generate: the whole answer at once."""
    state = current_state()
    return _answer(state, parse_generate(json_body(), state.config, stream=False, full_text_default=False),
                   lambda body: body)


def generate_stream() -> Response:
    """POST /generate_stream: one Server-Sent Event per token."""
    state = current_state()
    return _stream(state, parse_generate(json_body(), state.config, stream=True, full_text_default=False))


def compat_generate() -> Response:
    """POST /: TGI's compatibility route; ``return_full_text`` defaults to true here, as TGI's
    does for text-generation models, and a whole answer comes as a list of one."""
    state = current_state()
    call = parse_generate(json_body(), state.config, stream=False, full_text_default=True, stream_field=True)
    if call.stream:
        return _stream(state, call)
    return _answer(state, call, lambda body: [body])


def _answer(state: ServiceState, call: GenerateCall, shape: Callable[[dict[str, Any]], Any]) -> Response:
    """The whole answer, ``shape``d for the route, with TGI's timing headers."""
    validated = time.perf_counter()
    results = state.generate_admitted(
        request.url_rule.rule, lambda: state.generator.generate_several(call.request, call.best_of),
    )
    best = 0 if len(results) == 1 else max(range(len(results)), key=lambda i: (results[i].mean_logprob, -i))
    body: dict[str, Any] = {
        "generated_text": _output_text(call, results[best]),
        "sentences": results[best].texts,
    }
    if call.details:
        prefill = _prefill(state, call.request.inputs) if call.decoder_input_details else []
        body["details"] = _details(call, prefill, results[best], [r for i, r in enumerate(results) if i != best])
    prompt_tokens = len(results[best].sentences[0].prefix_words) if results[best].sentences else 0
    return add_timing_headers(json_response(shape(body)), validated, results, prompt_tokens)


def _stream(state: ServiceState, call: GenerateCall) -> Response:
    route = request.url_rule.rule
    generation = state.generator.start(call.request, stream=True)
    release = state.count_in_flight(generation.close)

    def events() -> Iterator[bytes]:
        started = time.perf_counter()
        try:
            previous: GeneratedToken | None = None
            index = 0
            for token in generation:
                if previous is not None:
                    index += 1
                    yield sse_event(_stream_event(call, index, previous))
                previous = token
            result = generation.result
            index += 1
            yield sse_event(_stream_event(call, index, previous, result))
            state.metrics.observe_generation(route, result.generated_words, time.perf_counter() - started)
        except GenerationTimeout as exc:
            yield sse_event({"error": str(exc), "error_type": "timeout"})
        except GenerationFailed as exc:
            yield sse_event({"error": str(exc), "error_type": "generation"})
        except Exception:  # the status line is sent already: report in the stream, as TGI does
            logger.exception("generation failed while streaming")
            yield sse_event({"error": "internal server error", "error_type": "generation"})

    return event_stream(events(), release)


def _stream_event(
    call: GenerateCall, index: int, token: GeneratedToken | None, result: GenerationResult | None = None
) -> dict[str, Any]:
    event: dict[str, Any] = {"index": index, "token": _token(token)}
    if call.request.top_n_tokens:
        event["top_tokens"] = _top_tokens(token)
    event["generated_text"] = None if result is None else _output_text(call, result)
    event["details"] = None if result is None else {
        "finish_reason": result.finish_reason,
        "generated_tokens": result.generated_tokens,
        "seed": result.seed,
        "input_length": len(result.sentences[0].prefix_words),
        "unknown_words": result.unknown_words,
    }
    return event


def _output_text(call: GenerateCall, result: GenerationResult) -> str:
    """The new text, after the inputs exactly as sent if ``return_full_text`` (as TGI does)."""
    return (call.request.inputs if call.return_full_text else "") + result.new_text


def _token(token: GeneratedToken) -> dict[str, Any]:
    return {"id": token.id, "text": token.text, "logprob": token.logprob, "special": token.special}


def _top_tokens(token: GeneratedToken) -> list[dict[str, Any]]:
    return [{"id": a.id, "text": a.text, "logprob": a.logprob, "special": a.special} for a in token.alternatives]


def _prefill(state: ServiceState, inputs: str) -> list[dict[str, Any]]:
    """TGI's prefill: each word of the prompt with its log-probability after the words before it
    (the first after SENTENCE_START, so it has one too), as POST /score scores a sentence."""
    tokens = prompt_tokens(state.generator.vocab, inputs)
    scored = state.scorer.score_words([t.word for t in tokens])
    return [{"id": t.id, "text": t.text_in(inputs), "logprob": logprob} for t, (logprob, _) in zip(tokens, scored)]


def _sequence_details(call: GenerateCall, prefill: list[dict[str, Any]], result: GenerationResult) -> dict[str, Any]:
    sequence: dict[str, Any] = {
        "finish_reason": result.finish_reason,
        "generated_tokens": result.generated_tokens,
        "seed": result.seed,
        "prefill": prefill,
        "tokens": [_token(t) for t in result.tokens],
    }
    if call.request.top_n_tokens:
        sequence["top_tokens"] = [_top_tokens(t) for t in result.tokens]
    return sequence


def _details(call: GenerateCall, prefill: list[dict[str, Any]], best: GenerationResult,
             others: list[GenerationResult]) -> dict[str, Any]:
    details = _sequence_details(call, prefill, best)
    if call.best_of > 1:
        details["best_of_sequences"] = [
            {"generated_text": _output_text(call, other), **_sequence_details(call, prefill, other)}
            for other in others
        ]
    details["unknown_words"] = best.unknown_words
    return details

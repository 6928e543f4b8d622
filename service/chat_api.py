"""POST /v1/chat/completions: OpenAI's chat shape over a model that knows no turns.

The template is deliberately simple. The model reads one sentence at a time and carries
nothing from one sentence to the next, so the prompt is the last user message alone: if its
last sentence is unfinished (no closing . ! or ?), the answer continues it; otherwise the answer
is a new sentence. Each choice is one sentence, as on /v1/completions. System and earlier
messages are checked for their shape and otherwise not read.
"""
from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from flask import Response, request

from models.text import split_sentences
from service import checks
from service.generation import GeneratedToken, GenerationRequest, GenerationResult, run_all, several
from service.http_body import json_body
from service.openai_api import (
    as_openai_status, envelope, finish_reason, openai_event_stream, openai_sampling, usage, usage_and_done,
)
from service.params import OPENAI_CHAT, parse_fields
from service.response import json_response
from service.sse import sse_event
from service.state import ServiceState, current_state
from service.timing_headers import add_timing_headers

# a sentence that ends: its last mark (closing quotes and brackets after it allowed)
_FINISHED = re.compile(r"[.!?][\"')\]]*\s*$")


def chat_prompt(message: str) -> str:
    """The words the answer continues: the message's last sentence if it is unfinished, else none."""
    sentences = split_sentences(message)
    if not sentences or _FINISHED.search(sentences[-1]):
        return ""
    return sentences[-1]


@dataclass(frozen=True)
class ChatCall:
    message: str  # the last user message
    request: GenerationRequest
    n: int
    logprobs: bool
    top_logprobs: int
    stream: bool
    include_usage: bool


def chat_completions() -> Response:
    """POST /v1/chat/completions."""
    state = current_state()
    call = as_openai_status(lambda: _parse(checks.json_object(json_body()), state))
    validated = time.perf_counter()
    requests = several(call.request, call.n)
    if call.stream:
        return _stream(state, call, requests)
    results = state.generate_admitted(request.url_rule.rule, lambda: run_all(state.generator.start_all(requests)))
    body = envelope(state, "chatcmpl", "chat.completion")
    body["system_fingerprint"] = state.config.model_id
    body["choices"] = []
    for index, result in enumerate(results):
        words = _answer_words(result.tokens)
        message = {"role": "assistant", "content": "".join(t.text for t in words)}
        body["choices"].append({"index": index, "message": message, "logprobs": _logprobs(call, words),
                                "finish_reason": finish_reason(result)})
    body["usage"] = usage([call.message], results)
    return add_timing_headers(json_response(body), validated, results, body["usage"]["prompt_tokens"])


def _parse(body: dict, state: ServiceState) -> ChatCall:
    p = parse_fields(body, OPENAI_CHAT, state.config)
    share = checks.word_budget({"n": p["n"]}, state.config.max_request_words)
    top_n = p["top_logprobs"] if p["logprobs"] else 0
    settings = GenerationRequest(chat_prompt(p["messages"]), openai_sampling(p, p["max_completion_tokens"], state), 1,
                                 p["seed"], p["repetition_penalty"], p["stop"], top_n, share)
    return ChatCall(p["messages"], settings, p["n"], p["logprobs"], top_n, p["stream"], p["stream_options"])


def _answer_words(tokens: list[GeneratedToken]) -> list[GeneratedToken]:
    """The answer's words: the sentence end dropped, and the first without the space that
    joined it to the prompt."""
    words = [token for token in tokens if not token.special]
    return [replace(words[0], text=words[0].text.lstrip()), *words[1:]] if words else []


def _logprobs(call: ChatCall, tokens: list[GeneratedToken]) -> dict[str, Any] | None:
    """OpenAI's chat logprobs: each word with its log-probability and UTF-8 bytes, and the
    likeliest alternatives at its step when top_logprobs asks for them."""
    if not call.logprobs:
        return None

    def entry(text: str, logprob: float) -> dict[str, Any]:
        return {"token": text, "logprob": logprob, "bytes": list(text.encode())}

    return {"content": [{**entry(t.text, t.logprob), "top_logprobs": [entry(a.text, a.logprob) for a in t.alternatives]}
                        for t in tokens]}


def _stream(state: ServiceState, call: ChatCall, requests: list[GenerationRequest]) -> Response:
    envelope_ = {**envelope(state, "chatcmpl", "chat.completion.chunk"), "system_fingerprint": state.config.model_id}
    generations = state.generator.start_all(requests, stream=True)

    def chunk(index: int, delta: dict[str, Any], logprobs: Any = None, finish: str | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        return sse_event({**envelope_, "choices": [choice]})

    def events() -> Iterator[bytes]:
        results: list[GenerationResult] = []
        for index, generation in enumerate(generations):
            yield chunk(index, {"role": "assistant", "content": ""})
            first = True
            for token in generation:
                if not token.special:
                    (word,) = _answer_words([token]) if first else [token]
                    first = False
                    yield chunk(index, {"content": word.text}, _logprobs(call, [word]))
            results.append(generation.result)
            yield chunk(index, {}, None, finish_reason(generation.result))
        yield from usage_and_done(call.include_usage, envelope_, [call.message], results)

    return openai_event_stream(state, generations, events())

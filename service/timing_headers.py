"""TGI's timing headers on a whole (not streamed) generation answer: where the request's time
went, for clients and proxies that log them."""
from __future__ import annotations

import time

from flask import g

from service.generation import GenerationResult
from service.response import ServiceResponse

COMPUTE_TYPE = "cpu+numpy"


def add_timing_headers(response: ServiceResponse, validated: float, results: list[GenerationResult],
                       prompt_tokens: int) -> ServiceResponse:
    """Set x-compute-time, x-total-time, x-validation-time, x-queue-time, x-inference-time (whole
    milliseconds, as TGI sends them, but x-compute-time in seconds), x-time-per-token,
    x-prompt-tokens and x-generated-tokens; ``validated`` is when the body had been checked
    (time.perf_counter)."""
    now = time.perf_counter()
    started = g.get("started", validated)
    total = now - started
    validation = validated - started
    queue = max((r.queue_seconds for r in results), default=0.0)
    inference = max(now - validated - queue, 0.0)
    generated = sum(r.generated_tokens for r in results)
    response.trusted_headers = (
        ("x-compute-type", COMPUTE_TYPE),
        ("x-compute-time", f"{total:.6f}"),
        ("x-compute-characters", str(sum(len(r.prompt_text) for r in results))),
        ("x-total-time", str(round(total * 1000))),
        ("x-validation-time", str(round(validation * 1000))),
        ("x-queue-time", str(round(queue * 1000))),
        ("x-inference-time", str(round(inference * 1000))),
        ("x-time-per-token", str(round(inference * 1000 / generated) if generated else 0)),
        ("x-prompt-tokens", str(prompt_tokens)),
        ("x-generated-tokens", str(generated)),
    )
    return response

"""What every route shares, built once per app (before gunicorn forks), and the admission of
generation requests: the in-flight limit (429 beyond it) and the in-flight gauge."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app

from service.concurrency import InFlightLimit
from service.config import ServiceConfig
from service.errors import ApiError
from service.generation import GenerationResult, TextGenerator
from service.metrics import ServiceMetrics
from service.scoring import TextScorer

EXTENSION_KEY = "rnnlm"


@dataclass(frozen=True)
class ServiceState:
    """Everything the routes share, built once per process."""

    config: ServiceConfig
    generator: TextGenerator
    scorer: TextScorer
    info: dict[str, Any]
    metrics: ServiceMetrics
    limit: InFlightLimit
    created: int  # when the model file was written (Unix time), for /v1/models

    def admit(self) -> Callable[[], None]:
        """Count a generation or scoring request in flight, or refuse it with a 429 when
        ``max_concurrent_requests`` already are; returns the call that ends it (call once)."""
        if not self.limit.try_enter():
            raise ApiError(429, "Model is overloaded: too many requests in flight, try again shortly",
                           error_type="overloaded")
        self.metrics.in_flight.inc()
        done = False

        def release() -> None:
            nonlocal done
            if not done:
                done = True
                self.metrics.in_flight.dec()
                self.limit.leave()

        return release

    def generate_admitted(self, route: str, work: Callable[[], list[GenerationResult]]) -> list[GenerationResult]:
        """Run a whole (not streamed) generation as an admitted request, and count its words."""
        release = self.admit()
        try:
            started = time.perf_counter()
            results = work()
            self.metrics.observe_generation(
                route, sum(r.generated_words for r in results), time.perf_counter() - started,
            )
        finally:
            release()
        return results


def current_state() -> ServiceState:
    return current_app.extensions[EXTENSION_KEY]

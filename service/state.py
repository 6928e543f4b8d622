"""What every route shares, built once per app (before gunicorn forks): the generator (whose
engine admits generation requests, see service.engine), the scorer with its in-flight limit
(429 beyond it), and the in-flight gauge."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app

from service.concurrency import InFlightLimit
from service.config import ServiceConfig
from service.engine import RETRY_AFTER_SECONDS
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
        """Count a scoring request in flight, or refuse it with a 429 when
        ``max_concurrent_requests`` already are; returns the call that ends it (call once)."""
        if not self.limit.try_enter():
            raise ApiError(429, "Model is overloaded: too many requests in flight, try again shortly",
                           error_type="overloaded", retry_after=RETRY_AFTER_SECONDS)
        return self.count_in_flight(self.limit.leave)

    def count_in_flight(self, then: Callable[[], None] = lambda: None) -> Callable[[], None]:
        """Count a request in the in-flight gauge; returns the call that ends it (safe to call
        twice), which also calls ``then``."""
        self.metrics.in_flight.inc()
        done = False

        def release() -> None:
            nonlocal done
            if not done:
                done = True
                self.metrics.in_flight.dec()
                then()

        return release

    def generate_admitted(self, route: str, work: Callable[[], list[GenerationResult]]) -> list[GenerationResult]:
        """Run a whole (not streamed) generation, count it in flight and count its words; the
        engine queues it or refuses it (Overloaded)."""
        release = self.count_in_flight()
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

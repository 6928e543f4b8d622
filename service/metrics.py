"""Prometheus metrics for GET /metrics.

Under gunicorn several worker processes answer requests, each with its own memory. The
gunicorn config (service/gunicorn.conf.py) therefore points PROMETHEUS_MULTIPROC_DIR at a fresh
temporary folder before anything imports prometheus_client: every process then writes its
values to files there, /metrics adds up the files of all processes (whichever worker answers,
the figures are the same), and the config's ``child_exit`` hook marks dead workers so their
in-flight gauge stops counting. Without that variable (tests, ``flask run``) the figures are
this process's own.
"""
from __future__ import annotations

import os
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SPEED_BUCKETS = (10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000, 300000)
# gunicorn accepts any upper-case token as a method; any other is counted as "other", so a
# client cannot add label values (and series) at will
HTTP_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"))
MODEL_INFO_LABELS = (
    "model_id", "model_file", "vocabulary_size", "hidden_size", "parameter_count", "corpus", "format_version",
)


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROCESS_DIR_VARIABLE))


class ServiceMetrics:
    """The service's metrics, in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self._model_labels: dict[str, str] | None = None  # of the model being served
        # the labelled series by their labels: as few as the labels' values (the routes, methods
        # and statuses; any other method is "other", any unmatched path "unmatched")
        self._request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._generation_series: dict[str, tuple[Any, Any]] = {}
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "rnnlm_requests", "HTTP requests answered, by route, method and status",
            ["route", "method", "status"], registry=r,
        )
        self.latency = Histogram(
            "rnnlm_request_duration_seconds", "Time from request to the last byte of the response, by route",
            ["route"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.generated_words = Counter(
            "rnnlm_generated_words", "Words generated (sentence ends not counted), by route", ["route"], registry=r,
        )
        self.words_per_second = Histogram(
            "rnnlm_generation_words_per_second", "Generation speed of each request that generated words, by route",
            ["route"], buckets=SPEED_BUCKETS, registry=r,
        )
        self.in_flight = Gauge(
            "rnnlm_requests_in_flight", "Generation and scoring requests being served",
            registry=r, multiprocess_mode="livesum",
        )
        self.model_info = Gauge(
            "rnnlm_model_info", "The loaded model (always 1; the facts are labels)",
            MODEL_INFO_LABELS, registry=r, multiprocess_mode="max",
        )

    def set_model_info(self, info: dict[str, Any], model_id: str) -> None:
        """1 for the model being served; a model replaced by a reload drops to 0."""
        facts = {**info, "model_id": model_id}
        labels = {name: str(facts.get(name)) for name in MODEL_INFO_LABELS}
        if self._model_labels is not None and self._model_labels != labels:
            self.model_info.labels(**self._model_labels).set(0)
        self.model_info.labels(**labels).set(1)
        self._model_labels = labels

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method if method in HTTP_METHODS else "other", status)
        series = self._request_series.get(key)
        if series is None:  # labels() takes a lock and builds its key on every call: once per key
            series = (self.requests.labels(key[0], key[1], str(status)), self.latency.labels(route))
            self._request_series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    def observe_generation(self, route: str, words: int, seconds: float) -> None:
        series = self._generation_series.get(route)
        if series is None:
            series = self._generation_series[route] = (self.generated_words.labels(route),
                                                       self.words_per_second.labels(route))
        series[0].inc(words)
        if words and seconds > 0:
            series[1].observe(words / seconds)

    def exposition(self) -> tuple[bytes, str]:
        """The text format and its content type: all processes' figures in multiprocess mode."""
        if multiprocess_mode():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def forget_process(pid: int) -> None:
    """A worker has exited: its live gauges no longer count (gunicorn's child_exit)."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(pid)

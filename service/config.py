"""Service settings, read from environment variables only.

Every setting has a default; a variable that is unset or blank uses it. A value that cannot be
used raises ConfigError with a message naming the variable, the value and what is expected, so
a mistyped deployment fails at start instead of at the first request.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from models.softmax import MOST_ROWS

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_BIND = "0.0.0.0:8000"  # RNNLM_BIND, read by service/gunicorn.conf.py and service/healthcheck.py


class ConfigError(ValueError):
    """An environment variable holds a value the service cannot use."""


def env_str(environ: Mapping[str, str], name: str, default: str) -> str:
    """The stripped value of ``name``, or ``default`` when unset or blank."""
    value = environ.get(name, "").strip()
    return value or default


def env_int(environ: Mapping[str, str], name: str, default: int, minimum: int, maximum: int | None = None) -> int:
    """An integer >= ``minimum`` (and <= ``maximum``, if given) from ``name``, or ``default`` when
    unset or blank."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {raw!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be an integer <= {maximum}, got {raw!r}")
    return value


def env_seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    """A positive number of seconds from ``name``, or ``default`` when unset or blank."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise ConfigError(f"{name} must be a number of seconds > 0, got {raw!r}")
    return value


def env_log_level(environ: Mapping[str, str], name: str, default: str) -> str:
    """A logging level name (upper case) from ``name``."""
    value = env_str(environ, name, default).upper()
    if value not in LOG_LEVELS:
        raise ConfigError(f"{name} must be one of {', '.join(LOG_LEVELS)}, got {environ.get(name)!r}")
    return value


def env_sha256(environ: Mapping[str, str], name: str) -> str | None:
    """A hex SHA-256 (64 digits, any case) from ``name``, lower-cased; None when unset or blank."""
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    if len(raw) != 64 or any(c not in "0123456789abcdefABCDEF" for c in raw):
        raise ConfigError(f"{name} must be a SHA-256 in hex (64 digits, as sha256sum prints it), got {raw!r}")
    return raw.lower()


def bind_port(bind: str, name: str) -> int | None:
    """The port of a ``HOST:PORT`` bind, None for ``unix:PATH``; ConfigError for anything else."""
    if bind.startswith("unix:") and len(bind) > len("unix:"):
        return None
    host, _, port = bind.rpartition(":")
    if host and port.isdigit() and 0 < int(port) < 65536:
        return int(port)
    raise ConfigError(f"{name} must be HOST:PORT (a port from 1 to 65535) or unix:PATH, got {bind!r}")


def env_bind(environ: Mapping[str, str], name: str) -> str | None:
    """A gunicorn bind address (``HOST:PORT`` or ``unix:PATH``) from ``name``; None when unset or blank."""
    value = environ.get(name, "").strip()
    if value:
        bind_port(value, name)
    return value or None


@dataclass(frozen=True)
class ServiceConfig:
    """What the HTTP service needs to know; see ``from_env`` for the variable names."""

    model_path: str = "artifacts/model.joblib"
    max_new_tokens: int = 200
    max_sentences: int = 20
    max_body_bytes: int = 65536
    log_level: str = "INFO"
    max_sequences: int = 4
    # the words one request may generate over all its sequences and sentences: a word of the
    # default model costs about 0.2 ms of a core (0.20 ms measured, AMD EPYC, one BLAS thread), so
    # 1,000 hold a core for about 0.2 s where 16,000 held it for 3 s; the playground's largest ask,
    # 20 sentences of the default 50 words, fits
    max_request_words: int = 1000
    # where GET /metrics is served instead of the public bind (see service/metrics_bind.py)
    metrics_bind: str | None = None
    # at most the threads of one worker (RNNLM_THREADS, 12): see service/gunicorn.conf.py
    max_concurrent_requests: int = 12
    model_id: str = "rnnlm"
    request_timeout_seconds: float = 10.0
    # the SHA-256 of the model file's bytes, checked before it is read; None: any file is read
    model_sha256: str | None = None
    # per worker, sequences generated together: the cost per word and sequence still falls from 32
    # to 64 rows (docs/measurements.md), and with one worker per core a worker holds its share of
    # many connections; a longer step delays every sequence in the batch, but a queued one waits longer
    max_batch: int = 64
    # per worker, sequences waiting for a place: keep-alive connections stay with the worker that
    # accepted them, so a worker may hold more than its share; with 32 places, 35-60% of the answers
    # at 256 connections were 429s, whose CPU the generations lost (docs/measurements.md). A
    # queued request waits a few generations at most, and its deadline still bounds that.
    max_queue: int = 96

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServiceConfig:
        """Read RNNLM_MODEL, RNNLM_MAX_NEW_TOKENS, RNNLM_MAX_SENTENCES, RNNLM_MAX_BODY_BYTES,
        RNNLM_LOG_LEVEL, RNNLM_MAX_SEQUENCES, RNNLM_MAX_CONCURRENT_REQUESTS, RNNLM_MODEL_ID,
        RNNLM_REQUEST_TIMEOUT_SECONDS, RNNLM_MODEL_SHA256, RNNLM_MAX_BATCH, RNNLM_MAX_QUEUE,
        RNNLM_MAX_REQUEST_WORDS and RNNLM_METRICS_BIND
        from ``environ`` (default: ``os.environ``)."""
        env = os.environ if environ is None else environ
        return cls(
            model_path=env_str(env, "RNNLM_MODEL", cls.model_path),
            max_new_tokens=env_int(env, "RNNLM_MAX_NEW_TOKENS", cls.max_new_tokens, minimum=1),
            max_sentences=env_int(env, "RNNLM_MAX_SENTENCES", cls.max_sentences, minimum=1),
            max_body_bytes=env_int(env, "RNNLM_MAX_BODY_BYTES", cls.max_body_bytes, minimum=1024),
            log_level=env_log_level(env, "RNNLM_LOG_LEVEL", cls.log_level),
            max_sequences=env_int(env, "RNNLM_MAX_SEQUENCES", cls.max_sequences, minimum=1),
            max_concurrent_requests=env_int(
                env, "RNNLM_MAX_CONCURRENT_REQUESTS", cls.max_concurrent_requests, minimum=1,
            ),
            model_id=env_str(env, "RNNLM_MODEL_ID", cls.model_id),
            request_timeout_seconds=env_seconds(env, "RNNLM_REQUEST_TIMEOUT_SECONDS", cls.request_timeout_seconds),
            model_sha256=env_sha256(env, "RNNLM_MODEL_SHA256"),
            max_request_words=env_int(env, "RNNLM_MAX_REQUEST_WORDS", cls.max_request_words, minimum=1),
            metrics_bind=env_bind(env, "RNNLM_METRICS_BIND"),
            max_batch=env_int(env, "RNNLM_MAX_BATCH", cls.max_batch, minimum=1, maximum=MOST_ROWS),
            max_queue=env_int(env, "RNNLM_MAX_QUEUE", cls.max_queue, minimum=0),
        )

    @property
    def log_level_number(self) -> int:
        return logging.getLevelName(self.log_level)

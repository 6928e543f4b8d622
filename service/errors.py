"""JSON error responses, in the shape of the API family the request is for.

The TGI-style routes answer ``{"error": ..., "error_type": ...}``; the OpenAI-compatible routes
(under /v1/) answer ``{"error": {"message", "type", "param", "code"}}``. Client mistakes become
4xx with a message that says what was wrong; anything unexpected becomes a 500 whose body says
nothing about the internals (the traceback goes to the log only).
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.wrappers import Response as BaseResponse

from service.engine import Overloaded
from service.generation import GenerationFailed, GenerationTimeout
from service.response import json_response
from service.scoring import ScoringTimeout

logger = logging.getLogger(__name__)

OPENAI_PREFIX = "/v1/"
# statuses that mean "the request itself is not acceptable"
_VALIDATION_STATUSES = {400, 413, 415, 422}
# the rnnlm/TGI error_type of an error -> OpenAI's error type
_OPENAI_TYPES = {"validation": "invalid_request_error", "not_found": "invalid_request_error",
                 "method_not_allowed": "invalid_request_error", "overloaded": "overloaded_error",
                 "timeout": "timeout_error", "generation": "server_error"}


class ApiError(Exception):
    """A client error with its HTTP status; raised by request checks, turned into JSON here."""

    def __init__(self, status: int, message: str, error_type: str = "validation", field: str | None = None,
                 retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.field = field  # the request field at fault, if one is
        self.retry_after = retry_after  # seconds, for a Retry-After header


def error_type_for(status: int, name: str) -> str:
    """``validation`` for bad requests, otherwise the HTTP reason in snake case (``not_found``)."""
    if status in _VALIDATION_STATUSES:
        return "validation"
    if status >= 500:
        return "internal"
    return name.lower().replace(" ", "_")


def openai_error_body(status: int, message: str, error_type: str, field: str | None) -> dict[str, Any]:
    """OpenAI's error object; ``code`` names the two cases a client may act on."""
    code = {"not_found": "model_not_found" if field in ("model", "model_id") else None,
            "overloaded": "overloaded"}.get(error_type)
    kind = _OPENAI_TYPES.get(error_type, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": field, "code": code}}


def _error_body(status: int, message: str, error_type: str, field: str | None = None) -> dict[str, Any]:
    if request.path.startswith(OPENAI_PREFIX):
        return openai_error_body(status, message, error_type, field)
    return {"error": message, "error_type": error_type}


def _api_error(exc: ApiError) -> tuple[Response, int]:
    response = json_response(_error_body(exc.status, exc.message, exc.error_type, exc.field))
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    return response, exc.status


def _overloaded(exc: Overloaded) -> tuple[Response, int]:
    return _api_error(ApiError(429, str(exc), error_type="overloaded", retry_after=exc.retry_after))


def _routes() -> str:
    """The app's routes, e.g. "POST /generate, GET /health", for 404 messages."""
    rules = sorted(current_app.url_map.iter_rules(), key=lambda rule: rule.rule)
    return ", ".join(
        f"{'/'.join(sorted((rule.methods or set()) - {'HEAD', 'OPTIONS'}))} {rule.rule}"
        for rule in rules
        if rule.endpoint != "static"
    )


def _describe(exc: HTTPException) -> str:
    """A message about this request for the common routing errors, else Werkzeug's own."""
    if isinstance(exc, NotFound):
        return f"no route {request.path!r}; the routes are {_routes()}"
    if isinstance(exc, MethodNotAllowed):
        allowed = ", ".join(sorted(m for m in exc.valid_methods or () if m != "OPTIONS"))
        return f"method {request.method} is not allowed on {request.path!r}; allowed: {allowed}"
    if isinstance(exc, RequestEntityTooLarge):
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return f"the request body is larger than the limit of {limit} bytes"
    return exc.description or exc.name


def _http_error(exc: HTTPException) -> BaseResponse:
    """Werkzeug's own errors (404, 405, 413, ...) as JSON, keeping their headers (e.g. Allow)."""
    response = exc.get_response()
    status = exc.code or 500
    body = json_response(_error_body(status, _describe(exc), error_type_for(status, exc.name)))
    response.set_data(body.get_data())
    response.content_type = "application/json"
    return response


def _timeout(exc: GenerationTimeout | ScoringTimeout) -> tuple[Response, int]:
    """A generation or scoring stopped at the per-request time limit: 503, the server's limit, not
    a fault. ``x-should-retry: false`` tells openai-python not to run the same long request again."""
    logger.warning("request stopped at the time limit of %g s", exc.limit)
    response = json_response(_error_body(503, str(exc), "timeout"))
    response.headers["x-should-retry"] = "false"
    return response, 503


def _failed(exc: GenerationFailed) -> tuple[Response, int]:
    """The model failed while generating (logged where it happened): TGI's 424."""
    return json_response(_error_body(424, str(exc), "generation")), 424


def _unexpected_error(exc: Exception) -> tuple[Response, int]:
    logger.exception("unhandled error while serving a request")
    return json_response(_error_body(500, "internal server error", "internal")), 500


def register_error_handlers(app: Flask) -> None:
    """Make every error response of ``app`` JSON."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(Overloaded, _overloaded)
    app.register_error_handler(GenerationTimeout, _timeout)
    app.register_error_handler(ScoringTimeout, _timeout)
    app.register_error_handler(GenerationFailed, _failed)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)

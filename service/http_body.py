"""Reading a JSON request body: 415 if it is not declared JSON, 413 if too large, 400 if not
valid JSON."""
from __future__ import annotations

from typing import Any

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from service.checks import decode_json_body
from service.errors import ApiError


def json_body() -> Any:
    """The decoded body of the current request."""
    if not request.is_json:
        raise ApiError(
            415, f"Content-Type must be application/json, got {request.content_type or 'none'!r}"
        )
    return decode_json_body(_raw_body())


def _raw_body() -> bytes:
    """The raw body, at most MAX_CONTENT_LENGTH bytes (413 otherwise).

    Werkzeug refuses a too large Content-Length itself, but a streamed (chunked) body is only
    cut at the limit, silently; so a streamed body that reaches the limit is refused here.
    """
    raw = request.get_data(cache=False)
    if request.content_length is None and len(raw) >= current_app.config["MAX_CONTENT_LENGTH"]:
        raise RequestEntityTooLarge()
    return raw

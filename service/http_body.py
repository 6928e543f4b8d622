"""Reading a JSON request body: 415 if it is not declared JSON, 413 if too large, 400 if not
valid JSON; and dropping what a refused request left unread."""
from __future__ import annotations

from typing import Any

from flask import Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import get_content_length

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

    A body of known length, from a server that ends the input stream at that length (gunicorn
    says so with ``wsgi.input_terminated``), is read in one call: werkzeug's reading wraps the
    stream and reads it in a loop, a cost on every request (docs/measurements.md). Werkzeug refuses a too large
    Content-Length itself, but a streamed (chunked) body is only cut at the limit, silently;
    so a streamed body that reaches the limit is refused here.
    """
    environ = request.environ
    length = get_content_length(environ)
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if length is not None and "wsgi.input_terminated" in environ:
        if limit is not None and length > limit:
            raise RequestEntityTooLarge()
        return environ["wsgi.input"].read(length)
    raw = request.get_data(cache=False)
    if length is None and len(raw) >= limit:
        raise RequestEntityTooLarge()
    return raw


DRAIN_LIMIT = 1 << 20  # bytes of a refused body read and dropped; beyond it the connection may close
_DRAIN_CHUNK = 1 << 16


def drain_unread_body(response: Response) -> Response:
    """After an error answer, read what is left of the request body (up to DRAIN_LIMIT).

    A request refused before its body was read (415, 413, 429, ...) leaves that body on the
    connection; gunicorn then may close the keep-alive connection instead of reading past it, and
    a client that sends its next request on it gets a dropped connection instead of an answer.
    """
    if response.status_code < 400:
        return response
    stream = request.environ.get("wsgi.input")
    length = request.content_length
    if stream is None or (length is not None and length > DRAIN_LIMIT):
        return response
    remaining = DRAIN_LIMIT if length is None else length
    while remaining > 0:
        chunk = stream.read(min(_DRAIN_CHUNK, remaining))
        if not chunk:
            break
        remaining -= len(chunk)
    return response

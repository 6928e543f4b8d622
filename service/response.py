"""The app's response class: the headers the service writes itself are appended to the list
handed to the server, after werkzeug has checked and copied the others.

Werkzeug checks every header value for newlines when it is set, and again when it copies the
headers for the server (about five Python calls a header each time); TGI's ten timing headers and
the four security headers made that 28 checked additions a generation answer. Their values are
ours (constants, formatted numbers), so they skip both.

``json_response`` writes a JSON body as Flask's ``jsonify`` does with the app's settings, with its
encoder made once instead of for every answer.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from flask import Response, current_app
from flask.json.provider import DefaultJSONProvider

from service.security_headers import SECURITY_HEADERS

_SECURITY_HEADERS = tuple((name, value, name.lower()) for name, value in SECURITY_HEADERS.items())


class ServiceResponse(Response):
    """Every response of the app (Flask turns a view's or an error's response into this class)."""

    # set by a route, sent after the headers werkzeug holds: names and values with no newline
    trusted_headers: Sequence[tuple[str, str]] = ()

    def get_wsgi_response(self, environ: Any) -> tuple[Any, str, list[tuple[str, str]]]:
        """werkzeug's status, headers and body, with the trusted headers, then each security
        header the response does not set itself."""
        app_iter, status, headers = super().get_wsgi_response(environ)
        headers.extend(self.trusted_headers)
        present = {name.lower() for name, _ in headers}
        headers.extend((name, value) for name, value, lower in _SECURITY_HEADERS if lower not in present)
        return app_iter, status, headers


# jsonify's output outside debug mode: compact, keys in the order the routes build them, ASCII
_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=DefaultJSONProvider.default)


def json_response(body: Any) -> ServiceResponse:
    """``body`` as a JSON answer, byte for byte what ``flask.jsonify(body)`` gives (indented in
    debug mode, as there)."""
    if current_app.debug:
        return current_app.json.response(body)
    return ServiceResponse(_ENCODER.encode(body) + "\n", mimetype=DefaultJSONProvider.mimetype)

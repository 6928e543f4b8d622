"""The app's response class: the headers the service writes itself are appended to the list
handed to the server, after werkzeug has checked and copied the others.

Werkzeug checks every header value for newlines when it is set, and again when it copies the
headers for the server (about five Python calls a header each time); TGI's ten timing headers and
the four security headers made that 28 checked additions a generation answer. Their values are
ours (constants, formatted numbers), so they skip both.

``json_response`` writes a JSON body as Flask's ``jsonify`` does with the app's settings, with an
encoder made once from them (``install_json_encoder``) instead of for every answer.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from flask import Flask, Response, current_app
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


JSON_ENCODER_KEY = "rnnlm.json_encoder"  # app.extensions entry set by install_json_encoder


def install_json_encoder(app: Flask) -> None:
    """Make the encoder json_response uses from the app's JSON settings (set them first): jsonify's
    outside debug mode, or none (jsonify itself answers) if the app's JSON provider is not Flask's
    default or is told never to be compact."""
    provider = app.json
    if not isinstance(provider, DefaultJSONProvider) or provider.compact is False:
        app.extensions[JSON_ENCODER_KEY] = None
        return
    app.extensions[JSON_ENCODER_KEY] = json.JSONEncoder(
        ensure_ascii=provider.ensure_ascii, sort_keys=provider.sort_keys, separators=(",", ":"),
        default=provider.default)


def json_response(body: Any) -> ServiceResponse:
    """``body`` as a JSON answer, byte for byte what ``flask.jsonify(body)`` gives (indented in
    debug mode, as there)."""
    encoder = current_app.extensions.get(JSON_ENCODER_KEY)
    if encoder is None or current_app.debug:
        return current_app.json.response(body)
    return current_app.response_class(encoder.encode(body) + "\n", mimetype=current_app.json.mimetype)

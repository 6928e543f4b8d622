"""Operations routes and the playground: GET /health, /info, /metrics, /openapi.json and /."""
from __future__ import annotations

from flask import Response, current_app

from service.openapi import openapi_document
from service.response import json_response
from service.state import current_state


def health() -> Response:
    """GET /health: the app exists only once the model is loaded, so answering means ready."""
    return json_response({"status": "ok"})


def info() -> Response:
    """GET /info: the model's shape and training facts, and the request limits."""
    return json_response(current_state().info)


def metrics() -> Response:
    """GET /metrics: Prometheus's text format, the same whichever worker answers."""
    body, content_type = current_state().metrics.exposition()
    return Response(body, content_type=content_type)


def openapi_json() -> Response:
    """GET /openapi.json: the OpenAPI 3.1 description of every route."""
    return json_response(openapi_document(current_state().config))


def playground() -> Response:
    """GET /: the playground page (service/static/playground.html)."""
    return current_app.send_static_file("playground.html")

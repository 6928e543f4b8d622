"""The Flask application: /generate, /health and /info.

``create_app`` loads the model and builds the Sampler once, before any request, so a broken
model file stops the service at start (ModelFileError) instead of failing requests later, and
gunicorn's workers inherit the loaded model from the master.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import RequestEntityTooLarge

from models.model_file import load_model
from service.config import ServiceConfig
from service.errors import ApiError, register_error_handlers
from service.generation import GenerationResult, TextGenerator
from service.model_info import describe_model
from service.validation import MAX_INPUT_CHARS, decode_json_body, parse_generate

logger = logging.getLogger(__name__)

EXTENSION_KEY = "rnnlm"


@dataclass(frozen=True)
class ServiceState:
    """Everything the routes share, built once per process."""

    config: ServiceConfig
    generator: TextGenerator
    info: dict[str, Any]


def create_app(config: ServiceConfig | None = None) -> Flask:
    """Build the app; raises ModelFileError if the model file is missing or unusable."""
    config = config or ServiceConfig.from_env()
    logging.getLogger("service").setLevel(config.log_level_number)
    loaded = load_model(config.model_path)
    state = ServiceState(
        config,
        TextGenerator(loaded.model, loaded.vocab),
        describe_model(loaded, config, MAX_INPUT_CHARS),
    )
    logger.info(
        "loaded %s: %d words, hidden size %d",
        config.model_path, len(loaded.vocab), loaded.model.hidden_size,
    )

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    if isinstance(app.json, DefaultJSONProvider):
        app.json.sort_keys = False  # keep the documented field order in responses
    app.extensions[EXTENSION_KEY] = state
    register_error_handlers(app)
    app.add_url_rule("/generate", view_func=generate, methods=["POST"])
    app.add_url_rule("/health", view_func=health, methods=["GET"])
    app.add_url_rule("/info", view_func=info, methods=["GET"])
    return app


def _state() -> ServiceState:
    return current_app.extensions[EXTENSION_KEY]


def generate() -> Response:
    """POST /generate: sentences from the model, shaped like text-generation-inference."""
    if not request.is_json:
        raise ApiError(
            415, f"Content-Type must be application/json, got {request.content_type or 'none'!r}"
        )
    state = _state()
    call = parse_generate(decode_json_body(_request_body()), state.config)
    result = state.generator.generate(call.request)
    body: dict[str, Any] = {"generated_text": result.generated_text, "sentences": result.texts}
    if call.details:
        body["details"] = _details(result)
    return jsonify(body)


def _request_body() -> bytes:
    """The raw body, at most MAX_CONTENT_LENGTH bytes (413 otherwise).

    Werkzeug refuses a too large Content-Length itself, but a streamed (chunked) body is only
    cut at the limit, silently; so a streamed body that reaches the limit is refused here.
    """
    raw = request.get_data(cache=False)
    if request.content_length is None and len(raw) >= current_app.config["MAX_CONTENT_LENGTH"]:
        raise RequestEntityTooLarge()
    return raw


def _details(result: GenerationResult) -> dict[str, Any]:
    return {
        "finish_reason": result.finish_reason,
        "generated_tokens": result.generated_tokens,
        "seed": result.seed,
        "tokens": [
            {"text": word, "logprob": logprob}
            for sentence in result.sentences
            for word, logprob in zip(sentence.new_words, sentence.logprobs, strict=True)
        ],
        "unknown_words": result.unknown_words,
    }


def health() -> Response:
    """GET /health: the app exists only once the model is loaded, so answering means ready."""
    return jsonify(status="ok")


def info() -> Response:
    """GET /info: the model's shape and training facts, and the request limits."""
    return jsonify(_state().info)

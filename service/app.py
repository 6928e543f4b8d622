"""The Flask application: the routes of both API families, operations routes and the playground.

``create_app`` loads the model and builds the Sampler once, before any request, so a broken
model file stops the service at start (ModelFileError) instead of failing requests later, and
gunicorn's workers inherit the loaded model (and the shared in-flight counts) from the master.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from flask import Flask, g, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response as BaseResponse

from models.model_file import ModelFileError, load_model
from service import chat_api, ops_api, openai_api, score_api, tgi_api
from service.concurrency import InFlightLimit
from service.config import ServiceConfig
from models.batch_sampling import BatchSampler
from service.engine import Engine
from service.errors import register_error_handlers
from service.generation import TextGenerator
from service.http_body import drain_unread_body
from service.metrics import ServiceMetrics, forget_process
from service.metrics_bind import came_in_on
from service.response import ServiceResponse, install_json_encoder
from service.model_info import describe_model
from service.scoring import TextScorer
from service.state import EXTENSION_KEY, ServiceState, current_state
from service.params import MAX_INPUT_CHARS

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
# (path, methods, view): every route of the service; service/openapi.py documents each one
ROUTES = (
    ("/", ["GET"], ops_api.playground),
    ("/", ["POST"], tgi_api.compat_generate),
    ("/generate", ["POST"], tgi_api.generate),
    ("/generate_stream", ["POST"], tgi_api.generate_stream),
    ("/v1/completions", ["POST"], openai_api.completions),
    ("/v1/chat/completions", ["POST"], chat_api.chat_completions),
    ("/v1/models", ["GET"], openai_api.list_models),
    ("/v1/models/<path:model_id>", ["GET"], openai_api.retrieve_model),
    ("/score", ["POST"], score_api.score),
    ("/tokenize", ["POST"], score_api.tokenize),
    ("/health", ["GET"], ops_api.health),
    ("/info", ["GET"], ops_api.info),
    (METRICS_PATH, ["GET"], ops_api.metrics),
    ("/openapi.json", ["GET"], ops_api.openapi_json),
)


def create_app(config: ServiceConfig | None = None) -> Flask:
    """Build the app; raises ModelFileError if the model file is missing or unusable."""
    config = config or ServiceConfig.from_env()
    logging.getLogger("service").setLevel(config.log_level_number)
    state = build_state(config, ServiceMetrics(), InFlightLimit(config.max_concurrent_requests))

    app = Flask(__name__)
    app.response_class = ServiceResponse  # it adds the security headers
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    if isinstance(app.json, DefaultJSONProvider):
        app.json.sort_keys = False  # keep the documented field order in responses
    install_json_encoder(app)
    app.extensions[EXTENSION_KEY] = state
    register_error_handlers(app)
    for path, methods, view in ROUTES:
        app.add_url_rule(path, endpoint=f"{view.__name__}_{methods[0].lower()}", view_func=view, methods=methods)
    # one hook each way: Flask checks every hook for a coroutine on every request. The metrics
    # and the configuration outlive a reload (build_state keeps them), so the hooks hold them.
    app.before_request(_start_timing if config.metrics_bind is None else _keep_metrics_apart(config.metrics_bind))
    app.after_request(_count_request(state.metrics))
    return app


def build_state(config: ServiceConfig, metrics: ServiceMetrics, limit: InFlightLimit) -> ServiceState:
    """Load the configured model file and build what the routes share around it."""
    loaded = load_model(config.model_path, config.model_sha256)
    info = {"model_id": config.model_id, **describe_model(loaded, config, MAX_INPUT_CHARS)}
    metrics.set_model_info(info, config.model_id)
    logger.info(
        "loaded %s: %s cell, %d words, hidden size %d",
        config.model_path, loaded.model.cell.upper(), len(loaded.vocab), loaded.model.hidden_size,
    )
    generator = TextGenerator(loaded.model, loaded.vocab, loaded.mixture, config.request_timeout_seconds)
    generator.engine = Engine(BatchSampler(generator.sampler), config.max_batch, config.max_queue)
    return ServiceState(
        config=config,
        generator=generator,
        scorer=TextScorer(loaded.model, loaded.vocab, loaded.mixture, config.request_timeout_seconds),
        info=info,
        metrics=metrics,
        limit=limit,
        created=int(os.path.getmtime(config.model_path)),
    )


def reload_model(app: Flask) -> bool:
    """Load the configured model file again and swap it in (gunicorn's SIGHUP, in the master,
    before the new workers fork). A file that cannot be used is refused with one logged line and
    the model loaded before keeps serving; returns whether the new model was taken."""
    old: ServiceState = app.extensions[EXTENSION_KEY]
    try:
        app.extensions[EXTENSION_KEY] = build_state(old.config, old.metrics, old.limit)
    except ModelFileError as exc:
        logger.error("reload refused, the model loaded before keeps serving: %s", exc)
        return False
    return True


def _start_timing() -> None:
    g.started = time.perf_counter()


def _keep_metrics_apart(bind: str) -> Callable[[], None]:
    """With RNNLM_METRICS_BIND, /metrics is answered on that listener only, and nothing else is."""

    def before_request() -> None:
        _start_timing()
        wants_metrics = request.url_rule is not None and request.url_rule.rule == METRICS_PATH
        if came_in_on(request.environ, bind) != wants_metrics:
            raise NotFound()

    return before_request


def _count_request(metrics: ServiceMetrics) -> Callable[[BaseResponse], BaseResponse]:
    """Count each request by route and status and time it to its last byte (a stream's end);
    read what a refused request left of its body first (service.http_body)."""

    def after_request(response: BaseResponse) -> BaseResponse:
        response = drain_unread_body(response)
        rule = request.url_rule
        route = rule.rule if rule is not None else "unmatched"
        method, status, started = request.method, response.status_code, g.get("started", time.perf_counter())

        def observe() -> None:
            metrics.observe_request(route, method, status, time.perf_counter() - started)

        if response.is_streamed:
            response.call_on_close(observe)
        else:
            observe()
        return response

    return after_request


def forget_worker(app: Flask, pid: int) -> None:
    """gunicorn's child_exit: a worker is gone; drop its in-flight counts and live gauges."""
    app.extensions[EXTENSION_KEY].limit.forget_process(pid)
    forget_process(pid)

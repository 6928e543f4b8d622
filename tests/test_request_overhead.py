"""bench/request_overhead.py's replaying decoder: the service answers with it exactly as with the
model (so what the benchmark times is the real request path), and its WSGI call works."""
from __future__ import annotations

import json

from bench.request_overhead import BODIES, call, replay_app
from service.app import create_app
from service.config import ServiceConfig


def test_the_replaying_service_answers_as_the_model_does(tiny_model_path):
    body = {"inputs": "", "parameters": {**BODIES["/generate"]["parameters"], "seed": 5, "details": True}}
    replayed = replay_app(str(tiny_model_path)).test_client().post("/generate", json=body)
    real = create_app(ServiceConfig(model_path=str(tiny_model_path))).test_client().post("/generate", json=body)
    assert replayed.status_code == real.status_code == 200
    assert replayed.get_json() == real.get_json()
    assert replayed.get_json()["details"]["generated_tokens"] > 0


def test_a_wsgi_call_gives_the_status(tiny_model_path):
    app = replay_app(str(tiny_model_path))
    for path, body in BODIES.items():
        assert call(app, path, json.dumps(body).encode()) == 200
    assert call(app, "/generate", b"{") == 400

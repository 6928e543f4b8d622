"""RNNLM_METRICS_BIND against a real gunicorn: /metrics on its own listener and only there, told
apart by the connection's local address (a forged Host header changes nothing)."""
from __future__ import annotations

import socket

import pytest
import requests

from service.config import ConfigError, ServiceConfig
from tests.gunicorn_server import Server, free_port, server_env, start_server
from tests.prometheus_text import metric


@pytest.fixture(scope="module")
def split_server(tiny_model_path):
    metrics_port = free_port()
    server = start_server(tiny_model_path, workers=1, RNNLM_METRICS_BIND=f"127.0.0.1:{metrics_port}")
    server.metrics_url = f"http://127.0.0.1:{metrics_port}"
    yield server
    server.stop()


def raw_request(url: str, request_line: str) -> str:
    """The status line gunicorn answers a hand-written request with (any method token)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(f"{request_line}\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        return connection.makefile("rb").readline().decode()


def test_metrics_are_served_on_their_own_bind_only(split_server):
    public, private = split_server.base_url, split_server.metrics_url
    assert requests.get(f"{public}/health", timeout=5).status_code == 200
    assert requests.post(f"{public}/generate", json={"parameters": {"max_new_tokens": 3}}, timeout=5).status_code == 200
    assert requests.get(f"{public}/metrics", timeout=5).status_code == 404
    port = private.rsplit(":", 1)[1]
    forged = requests.get(f"{public}/metrics", headers={"Host": f"127.0.0.1:{port}"}, timeout=5)
    assert forged.status_code == 404
    assert requests.get(f"{private}/health", timeout=5).status_code == 404
    assert requests.post(f"{private}/generate", json={}, timeout=5).status_code == 404
    scraped = requests.get(f"{private}/metrics", timeout=5)
    assert scraped.status_code == 200
    assert metric(scraped.text, "rnnlm_requests_total", route="/generate", method="POST", status="200") == 1


def test_gunicorn_passes_invented_methods_and_they_are_counted_as_other(split_server):
    for index in range(5):
        assert " 405 " in raw_request(split_server.base_url, f"BREW{index} /health HTTP/1.1")
    text = requests.get(f"{split_server.metrics_url}/metrics", timeout=5).text
    assert metric(text, "rnnlm_requests_total", route="unmatched", method="other", status="405") == 5
    assert "BREW" not in text


def test_a_bad_or_clashing_metrics_bind_stops_gunicorn_with_one_line(tiny_model_path):
    port = free_port()
    for bind, problem in ((f"127.0.0.1:{port}", "must use another port than RNNLM_BIND"),
                          ("nowhere", "RNNLM_METRICS_BIND must be HOST:PORT")):
        env = server_env(RNNLM_MODEL=str(tiny_model_path), RNNLM_BIND=f"127.0.0.1:{port}", RNNLM_METRICS_BIND=bind)
        server = Server(env, f"http://127.0.0.1:{port}")
        assert server.process.wait(timeout=30) != 0
        server.stop()
        assert problem in "".join(server.stderr) and "Traceback" not in "".join(server.stderr)
    assert ServiceConfig.from_env({"RNNLM_METRICS_BIND": "unix:/run/rnnlm-metrics.sock"}).metrics_bind == \
        "unix:/run/rnnlm-metrics.sock"
    with pytest.raises(ConfigError, match="a port from 1 to 65535"):
        ServiceConfig.from_env({"RNNLM_METRICS_BIND": "127.0.0.1:0"})

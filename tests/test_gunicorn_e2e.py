"""A real gunicorn process with the project's config, serving the tiny model on loopback."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.gunicorn_server import REPO_ROOT, Server, free_port, gunicorn_command, server_env


@pytest.fixture(scope="module")
def server(tiny_model_path: Path) -> Iterator[Server]:
    port = free_port()
    env = server_env(
        RNNLM_MODEL=str(tiny_model_path), RNNLM_BIND=f"127.0.0.1:{port}",
        RNNLM_WORKERS="2", RNNLM_THREADS="2", RNNLM_LOG_LEVEL="INFO",
    )
    running = Server(env, f"http://127.0.0.1:{port}")
    try:
        running.wait_until_healthy()
        yield running
    finally:
        returncode = running.stop()
    assert returncode == 0, "".join(running.stderr)


def generate(server: Server, body: dict) -> requests.Response:
    return requests.post(f"{server.base_url}/generate", json=body, timeout=10)


def test_health_and_info(server, tiny_model_path):
    assert requests.get(f"{server.base_url}/health", timeout=5).json() == {"status": "ok"}
    info = requests.get(f"{server.base_url}/info", timeout=5).json()
    assert info["vocabulary_size"] == 35 and info["hidden_size"] == 8
    assert info["model_file"] == tiny_model_path.name


def test_model_is_loaded_once_in_the_master(server):
    def booted() -> int:
        return sum("Booting worker" in line for line in list(server.stderr))

    deadline = time.monotonic() + 10  # /health may answer before the second worker is up
    while booted() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert booted() == 2
    assert sum("service.app: loaded" in line for line in server.stderr) == 1


def test_same_seed_same_text_on_every_worker(server, app):
    body = {"inputs": "the cat", "parameters": {"seed": 2024, "num_sentences": 3, "details": True}}
    expected = app.test_client().post("/generate", json=body).get_json()  # this test process
    answers = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        # each request opens its own connection; keep going until both workers have answered
        for _ in range(25):
            answers += [r.json() for r in pool.map(lambda _: generate(server, body), range(8))]
            time.sleep(0.05)  # let the access log lines arrive
            if len(server.generate_pids()) >= 2:
                break
    assert len(server.generate_pids()) == 2, "only one worker answered"
    assert all(answer == expected for answer in answers)


def test_errors_are_json_through_gunicorn(server):
    bad = generate(server, {"parameters": {"max_new_tokens": True}})
    assert bad.status_code == 422 and bad.json()["error_type"] == "validation"
    missing = requests.get(f"{server.base_url}/nope", timeout=5)
    assert missing.status_code == 404 and missing.json()["error_type"] == "not_found"
    huge = generate(server, {"inputs": "x" * 100_000})
    assert huge.status_code == 413 and huge.json()["error_type"] == "validation"
    chunked = requests.post(  # a generator body is sent chunked, without Content-Length
        f"{server.base_url}/generate", data=(b"x" * 1000 for _ in range(100)),
        headers={"Content-Type": "application/json"}, timeout=10,
    )
    assert chunked.status_code == 413
    assert requests.get(f"{server.base_url}/health", timeout=5).status_code == 200


def test_a_kept_alive_connection_is_served_on_and_idle_ones_hold_no_thread(server):
    """Requests one after another on one connection are all answered (its thread serves them on),
    and more idle kept-alive connections than the workers have threads (2 x 2) still leave a
    thread for a new client at once, not after their keep-alive time (service/thread_worker.py)."""
    with requests.Session() as session:
        for _ in range(5):
            assert session.get(f"{server.base_url}/health", timeout=5).status_code == 200
    idle = [requests.Session() for _ in range(6)]
    try:
        for session in idle:
            assert session.get(f"{server.base_url}/health", timeout=5).status_code == 200
        began = time.monotonic()
        for _ in range(3):
            assert requests.get(f"{server.base_url}/health", timeout=5).status_code == 200
        # a request waiting for an idle connection to close would wait its keep-alive time, 2 s;
        # the margin below that is for a loaded machine
        assert time.monotonic() - began < 1.5
    finally:
        for session in idle:
            session.close()


def run_failing_start(env: dict[str, str]) -> subprocess.CompletedProcess:
    """gunicorn must exit by itself; one that restarts its workers in a loop hits the timeout
    (a start takes a few seconds, over 10 on a loaded machine)."""
    result = subprocess.run(
        gunicorn_command(), cwd=REPO_ROOT, env=env, text=True, capture_output=True, timeout=30,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    return result


@pytest.mark.parametrize("contents, reason", [(None, "no such file"), (b"not a model", "cannot be read")])
def test_unusable_model_stops_gunicorn_with_one_line(tmp_path, contents, reason):
    model = tmp_path / "model.joblib"
    if contents is not None:
        model.write_bytes(contents)
    env = server_env(RNNLM_MODEL=str(model), RNNLM_BIND=f"127.0.0.1:{free_port()}")
    result = run_failing_start(env)
    lines = [line for line in result.stderr.splitlines() if str(model) in line]
    assert len(lines) == 1 and reason in lines[0], result.stderr


def test_bad_setting_stops_gunicorn_with_one_line(tiny_model_path):
    env = server_env(RNNLM_MODEL=str(tiny_model_path), RNNLM_WORKERS="two",
                     RNNLM_BIND=f"127.0.0.1:{free_port()}")
    result = run_failing_start(env)
    assert "RNNLM_WORKERS must be an integer >= 1, got 'two'" in result.stderr


def _configured_workers(env: dict[str, str], cores: set[int]) -> int:
    """The ``workers`` the project's gunicorn config sets, read in a process allowed on ``cores``."""
    script = ("import os, runpy; os.sched_setaffinity(0, %r); "
              "print(runpy.run_path('service/gunicorn.conf.py')['workers'])" % (cores,))
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity (Linux)")
def test_one_worker_per_usable_core_unless_set():
    env = server_env()  # no RNNLM_WORKERS
    every = os.sched_getaffinity(0)
    assert _configured_workers(env, every) == len(every)
    assert _configured_workers(env, {min(every)}) == 1
    assert _configured_workers({**env, "RNNLM_WORKERS": "3"}, {min(every)}) == 3

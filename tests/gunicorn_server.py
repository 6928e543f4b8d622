"""A real gunicorn process with the project's config, its output collected, for end-to-end tests."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
GUNICORN_CONF = REPO_ROOT / "service" / "gunicorn.conf.py"
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_pids(master: int) -> set[int]:
    """The pids of gunicorn's workers: the children of its ``master`` process."""
    with open(f"/proc/{master}/task/{master}/children") as children:
        return {int(pid) for pid in children.read().split()}


def server_env(**settings: str) -> dict[str, str]:
    """This environment without any RNNLM_ setting of the caller's, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RNNLM_")}
    env.update(settings)
    return env


def gunicorn_command() -> list[str]:
    return [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "service.wsgi:app"]


class Server:
    """A running gunicorn whose stdout (access log) and stderr are collected as they come."""

    def __init__(self, env: dict[str, str], base_url: str, command: list[str] | None = None):
        self.base_url = base_url
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.process = subprocess.Popen(
            command or gunicorn_command(), cwd=REPO_ROOT, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        # drain both pipes so a chatty server never blocks on a full pipe
        self._readers = [
            threading.Thread(target=self._collect, args=(stream, lines), daemon=True)
            for stream, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _collect(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)

    def wait_until_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited with {self.process.returncode}:\n{''.join(self.stderr)}")
            try:
                if requests.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        pytest.fail(f"gunicorn not healthy after {START_TIMEOUT} s:\n{''.join(self.stderr)}")

    def stop(self) -> int:
        """SIGTERM (gunicorn's graceful shutdown); kill only if that takes too long."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for reader in self._readers:
            reader.join(timeout=5)
        return self.process.returncode

    def generate_pids(self) -> set[str]:
        """Worker pids that answered POST /generate, from the access log's ``pid=<N>``."""
        return {
            match.group(1)
            for line in list(self.stdout)
            if '"POST /generate' in line and (match := re.search(r"pid=<(\d+)>", line))
        }


def start_server(model: Path, workers: int = 2, **settings: str) -> Server:
    """A healthy gunicorn serving ``model`` on a free loopback port (stop it when done)."""
    port = free_port()
    env = server_env(RNNLM_MODEL=str(model), RNNLM_BIND=f"127.0.0.1:{port}", RNNLM_WORKERS=str(workers),
                     **settings)
    server = Server(env, f"http://127.0.0.1:{port}")
    try:
        server.wait_until_healthy()
    except BaseException:
        server.stop()
        raise
    return server


def serve_cleanly(model: Path) -> Iterator[Server]:
    """A fixture body: a server for the tests, then a check that it stopped cleanly and logged no
    traceback."""
    running = start_server(model)
    try:
        yield running
    finally:
        returncode = running.stop()
    assert returncode == 0, "".join(running.stderr)
    assert "Traceback" not in "".join(running.stderr)

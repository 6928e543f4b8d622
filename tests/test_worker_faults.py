"""Faults a real gunicorn must ride out: a reload (SIGHUP) with a new model file and with a broken
one, and a worker killed mid-load. Requests keep flowing throughout; only the killed worker's
in-flight requests may fail."""
from __future__ import annotations

import os
import signal
import threading
from functools import partial
import time
from pathlib import Path

import pytest
import requests

from models.model_file import save_model
from models.rnn import RNN
from models.vocabulary import SPECIAL_TOKENS, Vocabulary
from tests.gunicorn_server import Server, start_server
from tests.gunicorn_server import worker_pids as children_of
from tests import waiting


def worker_pids(server: Server) -> set[int]:
    return children_of(server.process.pid)


wait_for = partial(waiting.wait_for, timeout=20.0, poll=0.1)


class Traffic:
    """Requests sent back to back from a few threads, each on its own keep-alive session; every
    outcome recorded (status, or the exception's name for a dropped connection)."""

    def __init__(self, server: Server, threads: int = 4):
        self.server, self.outcomes, self.stop = server, [], threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            try:
                response = session.post(f"{self.server.base_url}/generate", timeout=20,
                                        json={"inputs": "the", "parameters": {"max_new_tokens": 20}})
                self.outcomes.append(response.status_code)
            except requests.RequestException as exc:
                self.outcomes.append(type(exc).__name__)

    def __enter__(self) -> "Traffic":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def failures(self) -> list:
        return [o for o in self.outcomes if o != 200]


def model_file(path: Path, hidden: int, extra_words: int) -> Path:
    vocab = Vocabulary(list(SPECIAL_TOKENS) + "the a cat dog sat ran . ,".split() + [f"w{i}" for i in range(extra_words)])
    save_model(path, RNN(len(vocab), hidden, seed=hidden), vocab, {"corpus": "reload-test"})
    return path


def info(server: Server) -> dict:
    return requests.get(f"{server.base_url}/info", timeout=5).json()


def test_sighup_swaps_the_model_and_refuses_a_broken_one_without_failing_requests(tmp_path):
    path = model_file(tmp_path / "model.joblib", hidden=8, extra_words=0)
    server = start_server(path, workers=2)
    try:
        wait_for(lambda: len(worker_pids(server)) == 2, what="both workers")
        with Traffic(server) as traffic:
            time.sleep(0.5)
            model_file(tmp_path / "new.joblib", hidden=16, extra_words=5).replace(path)  # an atomic swap, as train.py writes
            before = worker_pids(server)
            os.kill(server.process.pid, signal.SIGHUP)
            wait_for(lambda: info(server)["hidden_size"] == 16 and not (worker_pids(server) & before), what="the new model")
            served = len(traffic.outcomes)
            path.write_bytes(path.read_bytes()[:300])  # broken: truncated
            os.kill(server.process.pid, signal.SIGHUP)
            wait_for(lambda: "reload refused" in "".join(server.stderr), what="the refusal")
            time.sleep(1.5)  # the new workers are up, forked with the model kept
            assert info(server)["hidden_size"] == 16
        assert len(traffic.outcomes) > served > 20  # requests really flowed through both reloads
        assert traffic.failures() == []
        refusal = [line for line in server.stderr if "reload refused" in line]
        assert len(refusal) == 1 and str(path) in refusal[0] and "cannot be read" in refusal[0]
    finally:
        server.stop()


def test_a_killed_worker_is_replaced_and_only_its_requests_fail(tmp_path):
    path = model_file(tmp_path / "model.joblib", hidden=8, extra_words=0)
    server = start_server(path, workers=2)
    try:
        wait_for(lambda: len(worker_pids(server)) == 2, what="both workers")
        with Traffic(server, threads=4) as traffic:
            time.sleep(0.5)
            victim = min(worker_pids(server))
            os.kill(victim, signal.SIGKILL)
            wait_for(lambda: len(worker_pids(server) - {victim}) == 2, what="a replacement worker")
            assert requests.get(f"{server.base_url}/health", timeout=5).status_code == 200
            time.sleep(0.5)
        # at most the requests the victim held: one per thread that was talking to it
        assert len(traffic.failures()) <= 4, traffic.failures()
        assert traffic.outcomes[-20:] == [200] * 20  # and the service answers normally after
    finally:
        server.stop()

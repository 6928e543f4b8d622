"""Past capacity, a real gunicorn with the default sizing refuses the excess with 429 instead of
queueing it: the in-flight limit must be reachable, i.e. at most the threads of a worker (a
request waiting in gunicorn for a thread is not counted). With the old sizing (2 threads a
worker, a limit of 32) a burst like this one queued and no request was ever refused."""
from __future__ import annotations

import threading
import time

import requests

from tests.gunicorn_server import start_server

HEAVY = {"inputs": "the", "parameters": {"num_sentences": 20, "max_new_tokens": 200, "best_of": 4, "seed": 1}}


def test_a_burst_past_capacity_gets_fast_429s_and_the_service_recovers(tiny_model_path):
    # default threads and in-flight limit; a word budget that lets each request hold its slot a while
    server = start_server(tiny_model_path, workers=2, RNNLM_MAX_REQUEST_WORDS="16000")
    try:
        time.sleep(1.5)  # both workers up
        start, outcomes = threading.Barrier(48), []

        def one() -> None:
            with requests.Session() as session:
                start.wait()
                began = time.monotonic()
                status = session.post(f"{server.base_url}/generate", json=HEAVY, timeout=60).status_code
                outcomes.append((status, time.monotonic() - began))

        threads = [threading.Thread(target=one) for _ in range(48)]
        for thread in threads:
            thread.start()
        time.sleep(0.05)
        health = requests.get(f"{server.base_url}/health", timeout=5).status_code  # a thread is free for it
        for thread in threads:
            thread.join(timeout=120)
        statuses = sorted(status for status, _ in outcomes)
        assert len(outcomes) == 48 and set(statuses) == {200, 429}, statuses
        refused = sorted(seconds for status, seconds in outcomes if status == 429)
        answered = sorted(seconds for status, seconds in outcomes if status == 200)
        assert refused[len(refused) // 2] < answered[-1]  # a refusal does not wait for the generations
        assert health == 200
        ok = requests.post(f"{server.base_url}/generate", json={"inputs": "the"}, timeout=30)
        assert ok.status_code == 200  # and once the burst is over, requests are served again
    finally:
        server.stop()

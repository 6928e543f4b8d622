"""Past capacity, a real gunicorn queues what its engines have room for and refuses the rest at
once with 429 and Retry-After (a request waiting in gunicorn for a thread would be neither, so
every worker has a thread for each place in its batch and queue); /health still answers, and
the service recovers."""
from __future__ import annotations

import threading
import time

import requests

from tests.gunicorn_server import start_server

HEAVY = {"inputs": "the", "parameters": {"num_sentences": 20, "max_new_tokens": 200, "best_of": 4, "seed": 1,
                                        "do_sample": True}}


def test_a_burst_past_capacity_is_queued_up_to_the_bound_and_the_rest_refused_at_once(tiny_model_path):
    # per worker: 4 sequences in the batch and 4 waiting, i.e. two of these requests; a word
    # budget that lets each request hold its place a while
    server = start_server(tiny_model_path, workers=2, RNNLM_MAX_BATCH="4", RNNLM_MAX_QUEUE="4",
                          RNNLM_MAX_REQUEST_WORDS="16000")
    try:
        time.sleep(1.5)  # both workers up
        start, outcomes = threading.Barrier(24), []

        def one() -> None:
            with requests.Session() as session:
                start.wait()
                began = time.monotonic()
                response = session.post(f"{server.base_url}/generate", json=HEAVY, timeout=60)
                outcomes.append((response.status_code, time.monotonic() - began, response.headers.get("Retry-After")))

        threads = [threading.Thread(target=one) for _ in range(24)]
        for thread in threads:
            thread.start()
        time.sleep(0.05)
        health = requests.get(f"{server.base_url}/health", timeout=5).status_code  # a thread is free for it
        for thread in threads:
            thread.join(timeout=120)
        statuses = sorted(status for status, _, _ in outcomes)
        assert len(outcomes) == 24 and set(statuses) == {200, 429}, statuses
        assert statuses.count(200) >= 2  # at least one request ran and one waited for it
        refused = sorted(seconds for status, seconds, _ in outcomes if status == 429)
        answered = sorted(seconds for status, seconds, _ in outcomes if status == 200)
        assert refused[len(refused) // 2] < answered[-1]  # a refusal does not wait for the generations
        assert all(int(retry) >= 1 for status, _, retry in outcomes if status == 429)
        assert health == 200
        ok = requests.post(f"{server.base_url}/generate", json={"inputs": "the"}, timeout=30)
        assert ok.status_code == 200  # and once the burst is over, requests are served again
    finally:
        server.stop()

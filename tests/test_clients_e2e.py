"""A live gunicorn (two workers) called by the official clients of both ecosystems:
huggingface_hub's InferenceClient (TGI) and the openai package, streaming and not; the same
seed giving the same text through every route and worker; /metrics the same from every worker."""
from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
import requests
from huggingface_hub import InferenceClient
from huggingface_hub.errors import ValidationError

from tests.gunicorn_server import Server, serve_cleanly, start_server
from tests.prometheus_text import metric
from tests.sse import sse_data

MODEL = "rnnlm"


@pytest.fixture(scope="module")
def server(tiny_model_path: Path) -> Iterator[Server]:
    yield from serve_cleanly(tiny_model_path)


@pytest.fixture(scope="module")
def hub(server: Server) -> InferenceClient:
    return InferenceClient(model=server.base_url, timeout=10)


@pytest.fixture(scope="module")
def oai(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="not-needed", timeout=10)  # retries on


def tgi(server: Server, route: str, body: dict) -> requests.Response:
    return requests.post(f"{server.base_url}{route}", json=body, timeout=10)


# ------------------------------------------------------------------------------ huggingface_hub
def test_hub_text_generation(server, hub):
    text = hub.text_generation("the cat", seed=3, max_new_tokens=12)
    raw = tgi(server, "/generate", {"inputs": "the cat", "parameters": {"seed": 3, "max_new_tokens": 12}}).json()
    assert text == "the cat" + raw["generated_text"]  # POST / returns the full text, as TGI's does


def test_hub_details_stop_and_top_n_tokens(hub):
    out = hub.text_generation("the cat", seed=3, max_new_tokens=12, details=True, return_full_text=False,
                              stop=["tree"], top_n_tokens=2, repetition_penalty=1.3)
    assert out.details.finish_reason in ("stop_sequence", "eos_token", "length")
    assert "tree" not in out.generated_text
    assert "".join(t.text for t in out.details.tokens) == out.generated_text
    assert out.details.generated_tokens == len(out.details.tokens) == len(out.details.top_tokens)
    assert out.details.seed == 3


def test_hub_best_of(hub):
    out = hub.text_generation("", best_of=2, seed=5, details=True, max_new_tokens=10, do_sample=True)
    assert len(out.details.best_of_sequences) == 1
    assert {out.details.seed, out.details.best_of_sequences[0].seed} == {5, 6}


def test_hub_streaming(hub):
    whole = hub.text_generation("a dog", seed=8, max_new_tokens=15, return_full_text=False)
    words = list(hub.text_generation("a dog", seed=8, max_new_tokens=15, return_full_text=False, stream=True))
    assert "".join(words) == whole and len(words) > 1
    events = list(hub.text_generation("a dog", seed=8, max_new_tokens=15, stream=True, details=True))
    assert events[-1].generated_text == "a dog" + whole
    assert events[-1].details.seed == 8 and events[-1].details.generated_tokens == len(events)
    assert all(e.generated_text is None for e in events[:-1])


def test_hub_validation_errors(hub):
    with pytest.raises(ValidationError, match="parameters.top_n_tokens"):
        hub.text_generation("the", top_n_tokens=9)
    with pytest.raises(ValidationError, match="parameters.best_of"):
        hub.text_generation("the", best_of=2, stream=True)


# -------------------------------------------------------------------------------------- openai
def test_openai_completion(oai):
    done = oai.completions.create(model=MODEL, prompt="the cat", seed=4, max_tokens=12, logprobs=2, n=2)
    assert [c.index for c in done.choices] == [0, 1]
    first = done.choices[0]
    assert "".join(first.logprobs.tokens) == first.text
    assert done.usage.prompt_tokens == 2 and done.usage.completion_tokens > 0


def test_openai_streaming(oai):
    whole = oai.completions.create(model=MODEL, prompt="the cat", seed=4, max_tokens=12)
    chunks = list(oai.completions.create(model=MODEL, prompt="the cat", seed=4, max_tokens=12, stream=True,
                                         stream_options={"include_usage": True}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].usage.total_tokens == whole.usage.total_tokens


def test_openai_models_and_errors(oai):
    assert [m.id for m in oai.models.list()] == [MODEL]
    assert oai.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.BadRequestError) as bad:
        oai.completions.create(model=MODEL, prompt="x", temperature=3)
    assert bad.value.body["param"] == "temperature"
    with pytest.raises(openai.NotFoundError) as missing:
        oai.completions.create(model="gpt-4", prompt="x")
    assert missing.value.body["code"] == "model_not_found"


# ----------------------------------------------------------------- the same text everywhere
def answered_pids(server: Server, route: str) -> set[str]:
    return {
        match.group(1) for line in list(server.stdout)
        if f'"POST {route} ' in line and (match := re.search(r"pid=<(\d+)>", line))
    }


def test_a_seed_gives_one_text_on_every_route_and_worker(server):
    # clients that close each connection, so that successive requests reach different workers
    hub = InferenceClient(model=server.base_url, timeout=10, headers={"Connection": "close"})
    oai = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="-", max_retries=0, timeout=10,
                        default_headers={"Connection": "close"})
    settings = {"seed": 77, "temperature": 0.9, "top_p": 0.95}
    params = {**settings, "max_new_tokens": 30, "stop": ["sad"]}
    calls = {
        "/generate": lambda: tgi(server, "/generate", {"inputs": "she", "parameters": params}).json()["generated_text"],
        "/generate_stream": lambda: sse_data(
            tgi(server, "/generate_stream", {"inputs": "she", "parameters": params}).text)[-1]["generated_text"],
        "/": lambda: hub.text_generation("she", max_new_tokens=30, stop=["sad"], return_full_text=False, **settings),
        "/v1/completions": lambda: oai.completions.create(
            model=MODEL, prompt="she", max_tokens=30, stop="sad", **settings).choices[0].text,
    }
    texts = set()
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(20):
            texts |= set(pool.map(lambda call: call(), [c for c in calls.values() for _ in range(2)]))
            time.sleep(0.05)  # let the access log lines arrive
            if all(len(answered_pids(server, route)) == 2 for route in calls):
                break
    assert all(len(answered_pids(server, route)) == 2 for route in calls), "a worker never answered"
    assert len(texts) == 1 and texts.pop()


# ---------------------------------------------------------------------------------- metrics
def scrape(server: Server) -> list[str]:
    """/metrics from both workers (several tries until each has answered at least once)."""
    answers = []
    for _ in range(40):
        answers.append(requests.get(f"{server.base_url}/metrics", timeout=5))
        time.sleep(0.02)
        pids = {m.group(1) for line in list(server.stdout)
                if '"GET /metrics ' in line and (m := re.search(r"pid=<(\d+)>", line))}
        if len(pids) == 2 and len(answers) >= 4:
            break
    assert len(pids) == 2, "only one worker answered /metrics"
    assert all(a.status_code == 200 and a.headers["Content-Type"].startswith("text/plain") for a in answers)
    return [a.text for a in answers]


def test_metrics_are_the_same_whichever_worker_answers(server):
    labels = {"route": "/generate", "method": "POST", "status": "200"}
    before = metric(scrape(server)[-1], "rnnlm_requests_total", **labels)
    words_before = metric(scrape(server)[-1], "rnnlm_generated_words_total", route="/generate")
    sent_words = 0
    for seed in range(10):
        body = {"parameters": {"seed": seed, "details": True}}
        details = tgi(server, "/generate", body).json()["details"]
        sent_words += sum(not t["special"] for t in details["tokens"])
    assert tgi(server, "/generate", {"parameters": {"top_k": 0}}).status_code == 422
    for text in scrape(server):
        assert metric(text, "rnnlm_requests_total", **labels) == before + 10
        assert metric(text, "rnnlm_requests_total", route="/generate", method="POST", status="422") >= 1
        assert metric(text, "rnnlm_generated_words_total", route="/generate") == words_before + sent_words
        assert metric(text, "rnnlm_request_duration_seconds_count", route="/generate") >= before + 11
        assert metric(text, "rnnlm_generation_words_per_second_count", route="/generate") >= 10
        assert metric(text, "rnnlm_requests_in_flight") == 0
        assert 'rnnlm_model_info{' in text and 'vocabulary_size="35"' in text


def test_a_killed_worker_is_replaced_and_forgotten(tiny_model_path):
    server = start_server(tiny_model_path)
    try:
        assert tgi(server, "/generate", {}).status_code == 200
        time.sleep(0.1)
        (victim,) = answered_pids(server, "/generate")
        os.kill(int(victim), signal.SIGKILL)
        deadline = time.monotonic() + 10
        while sum("Booting worker" in line for line in list(server.stderr)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(6):
            assert tgi(server, "/generate", {}).status_code == 200
        text = requests.get(f"{server.base_url}/metrics", timeout=5).text
        assert metric(text, "rnnlm_requests_in_flight") == 0
    finally:
        server.stop()
    assert "Traceback" not in "".join(server.stderr), "".join(server.stderr)

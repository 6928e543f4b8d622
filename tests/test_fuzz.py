"""Fuzzing every route with hypothesis: random JSON, wrong types, huge numbers and strings,
unicode, empty bodies, wrong content types and chunked bodies must never give a 5xx or hang.

The Flask test client gives the breadth (hundreds of requests a second); a short run against a
real gunicorn checks that no worker dies and that memory stays flat.
"""
from __future__ import annotations

import json
import os
import time

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.app import ROUTES, create_app
from service.config import ServiceConfig
from service.params import OPENAI_COMPLETION, TGI_BODY, TGI_PARAMETERS
from tests.gunicorn_server import start_server, worker_pids

PARAMETER_NAMES = [spec.name for spec in TGI_PARAMETERS if spec.kind != "unsupported"]
TOP_LEVEL_FIELDS = [spec.name for spec in TGI_BODY]
OPENAI_FIELDS = [spec.name for spec in OPENAI_COMPLETION if spec.kind != "unsupported"]

FUZZ = settings(max_examples=150, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
           | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([0, 1, -1, 1e308, -1e-308, 2**63, 0.5])
           | st.text(max_size=40) | st.sampled_from(["", " ", "\u0000", "\ud800", "🙂" * 50, "a" * 5000, "the cat"]))
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
                           max_leaves=20)
CONTENT_TYPES = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", "",
                                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"])
POST_PATHS = sorted({path for path, methods, _ in ROUTES if "POST" in methods})


def json_text(value) -> str:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass").decode("utf-8", "replace")


@pytest.fixture(scope="module")
def fuzz_client(tiny_model_path):
    """Small limits so that even the largest accepted request is quick."""
    config = ServiceConfig(model_path=str(tiny_model_path), max_new_tokens=20, max_sentences=3, max_sequences=2)
    return create_app(config).test_client()


def assert_handled(response) -> None:
    """Below 500, and a readable body: JSON for errors, events for a stream that began."""
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    body = response.get_data(as_text=True)
    if response.status_code >= 400:
        assert isinstance(response.get_json(), dict)
    assert "internal server error" not in body


@FUZZ
@given(path=st.sampled_from(POST_PATHS), body=JSON_VALUES.map(json_text) | st.binary(max_size=200), content_type=CONTENT_TYPES)
def test_any_body_on_any_route(fuzz_client, path, body, content_type):
    assert_handled(fuzz_client.post(path, data=body, content_type=content_type))


@FUZZ
@given(inputs=JSON_VALUES, parameters=st.dictionaries(st.sampled_from(PARAMETER_NAMES), JSON_VALUES, max_size=6),
       path=st.sampled_from(["/generate", "/generate_stream", "/"]), extra=st.dictionaries(st.text(max_size=8), SCALARS, max_size=1))
def test_generate_with_random_parameters(fuzz_client, inputs, parameters, path, extra):
    body = {"inputs": inputs, "parameters": parameters, **{k: v for k, v in extra.items() if k not in TOP_LEVEL_FIELDS}}
    assert_handled(fuzz_client.post(path, data=json_text(body), content_type="application/json"))


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(OPENAI_FIELDS), JSON_VALUES, max_size=7), model=st.sampled_from(["rnnlm", "gpt-4", ""]))
def test_completions_with_random_fields(fuzz_client, fields, model):
    body = {"model": model, **fields}
    assert_handled(fuzz_client.post("/v1/completions", data=json_text(body), content_type="application/json"))


@FUZZ
@given(text=st.text(max_size=3000) | JSON_VALUES, extra=st.dictionaries(st.text(max_size=8), SCALARS, max_size=2))
def test_score_with_random_text(fuzz_client, text, extra):
    assert_handled(fuzz_client.post("/score", data=json_text({"text": text, **extra}), content_type="application/json"))


@FUZZ
@given(path=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=60), method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]))
def test_any_path_and_method(fuzz_client, path, method):
    response = fuzz_client.open("/" + path.lstrip("/"), method=method, data="{}", content_type="application/json")
    assert response.status_code < 500


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def in_chunks(body: bytes, size: int = 7):
    """A generator, so that requests sends the body chunked: pieces of ``size`` bytes."""
    return (body[i:i + size] for i in range(0, len(body), size)) if body else iter([b""])


def test_real_gunicorn_survives_fuzzing_with_flat_memory(tiny_model_path):
    """A few hundred hostile requests against gunicorn itself: same workers, no 5xx, memory flat."""
    server = start_server(tiny_model_path, workers=2)
    try:
        deadline = time.monotonic() + 20
        while len(workers := worker_pids(server.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # /health answered once the first worker was up
        assert len(workers) == 2
        session = requests.Session()
        bodies = [b"", b"{", b"null", b"[]", b'{"inputs": 1e999}', json.dumps({"inputs": "x" * 60000}).encode(),
                  b'{"inputs": "\\ud800", "parameters": {"seed": 99999999999999999999999}}',
                  b'{"inputs": "the", "parameters": {"max_new_tokens": 200, "num_sentences": 20, "best_of": 4}}',
                  "ünïcödé 🙂".encode(), os.urandom(300),
                  b"x" * 70_000]  # over RNNLM_MAX_BODY_BYTES: refused unread, and the next request still works
        statuses = []

        def burst(rounds: int) -> None:
            for _ in range(rounds):
                for path in POST_PATHS:
                    for body in bodies:
                        for content_type in ("application/json", "text/plain"):
                            statuses.append(session.post(server.base_url + path, data=body, timeout=30,
                                                         headers={"Content-Type": content_type}).status_code)
                        # the same body chunked (Transfer-Encoding: chunked, no Content-Length)
                        statuses.append(session.post(server.base_url + path, data=in_chunks(body), timeout=30,
                                                     headers={"Content-Type": "application/json"}).status_code)

        burst(1)  # warm: allocations that happen once
        before = {pid: rss_kb(pid) for pid in workers}
        burst(3)
        after = {pid: rss_kb(pid) for pid in workers}
        assert statuses and max(statuses) < 500
        assert worker_pids(server.process.pid) == workers  # no worker died or was replaced
        for pid in workers:
            assert after[pid] - before[pid] < 20_000, (before, after)  # under 20 MB of growth in 3 rounds
        assert requests.get(server.base_url + "/health", timeout=5).status_code == 200
        chunked = session.post(server.base_url + "/generate", data=in_chunks(b'{"inputs": "the", "parameters": {"seed": 1}}'),
                               headers={"Content-Type": "application/json"}, timeout=30)
        assert chunked.status_code == 200 and "generated_text" in chunked.json()  # a chunked body is read, not refused
    finally:
        server.stop()

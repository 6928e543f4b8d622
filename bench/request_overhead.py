"""CPU a generation request costs outside the decoder: the service with its decoder replaced by
one that replays words recorded from the real model (so the text, casing and JSON are real, and
a step costs next to nothing).

    .venv/bin/python bench/request_overhead.py --model artifacts/model.joblib [--requests 2000]
        [--threads 16] [--profile 25] [--gunicorn --connections 64]

In-process, ``--threads`` threads call the WSGI app directly with the benchmark's bodies
(bench/generate.lua's POST /generate and its /v1/completions equivalent); reported is the
process's CPU time per request (the callers' own share is a few microseconds), the median of
``--repeats`` runs. ``--profile N`` prints the N costliest functions (cProfile, cumulative, the
request threads) instead. ``--gunicorn`` serves the same app with ``make serve``'s gunicorn
settings and runs bench/closed_loop.py's wrk load at ``--connections``: reported are the CPU time
of gunicorn's processes (master and workers) per response, and the responses per second.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy is imported

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask  # noqa: E402

from models.batch_sampling import BatchSampler, SequenceSpec  # noqa: E402
from models.sampling import SampledWord  # noqa: E402
from service.app import create_app  # noqa: E402
from service.config import ServiceConfig  # noqa: E402
from service.state import EXTENSION_KEY  # noqa: E402

BODIES = {
    "/generate": {"inputs": "", "parameters": {"num_sentences": 1, "max_new_tokens": 40, "do_sample": True}},
    "/v1/completions": {"model": "rnnlm", "prompt": "", "max_tokens": 40, "temperature": 1.0},
}
RECORDED_SEQUENCES = 64


class ReplayDecoder:
    """The engine's Decoder protocol, answering each sequence with words recorded from the real
    decoder (chosen by the sequence's seed): the engine, text and API work as with the model."""

    def __init__(self, recorded: list[list[SampledWord]]):
        self.recorded = recorded
        self._active: dict[object, list] = {}

    def add(self, key: object, spec: SequenceSpec) -> None:
        self._active[key] = [self.recorded[spec.seed % len(self.recorded)], 0]

    def remove(self, key: object) -> None:
        self._active.pop(key, None)

    def step(self) -> list[tuple[object, SampledWord | None]]:
        out: list[tuple[object, SampledWord | None]] = []
        for key, place in list(self._active.items()):
            words, index = place
            if index < len(words):
                out.append((key, words[index]))
                place[1] = index + 1
            else:
                out.append((key, None))
                del self._active[key]
        return out


def record(app: Flask, count: int) -> list[list[SampledWord]]:
    """``count`` one-sentence sequences drawn by the real decoder, as the benchmark asks for them."""
    from service.tgi_api import parse_generate

    state = app.extensions[EXTENSION_KEY]
    request = parse_generate(BODIES["/generate"], state.config, stream=False, full_text_default=False).request
    decoder = BatchSampler(state.generator.sampler)
    words: dict[int, list[SampledWord]] = {}
    for seed in range(count):
        decoder.add(seed, state.generator.sequence_spec(request, seed, []))
        words[seed] = []
    while len(decoder):
        for key, word in decoder.step():
            if word is not None:
                words[key].append(word)
    return [words[seed] for seed in range(count)]


def replay_app(model: str | None = None) -> Flask:
    """The service (settings from the environment, or serving ``model``) with a replaying decoder."""
    config = ServiceConfig.from_env() if model is None else ServiceConfig(model_path=model)
    app = create_app(config)
    engine = app.extensions[EXTENSION_KEY].generator.engine
    engine.decoder = ReplayDecoder(record(app, RECORDED_SEQUENCES))
    return app


def call(app: Flask, path: str, body: bytes) -> int:
    """One request through the WSGI interface, as a server makes it; the status code."""
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:8000", "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    status = []
    chunks = app(environ, lambda line, headers, exc_info=None: status.append(line))
    try:
        for _ in chunks:
            pass
    finally:
        getattr(chunks, "close", lambda: None)()
    return int(status[0].split()[0])


def run(app: Flask, path: str, requests: int, threads: int) -> float:
    """Process CPU microseconds per request, ``requests`` spread over ``threads`` threads."""
    body = json.dumps(BODIES[path]).encode()
    failures: list[int] = []

    def worker(count: int) -> None:
        for _ in range(count):
            status = call(app, path, body)
            if status != 200:
                failures.append(status)

    pool = [threading.Thread(target=worker, args=(requests // threads,)) for _ in range(threads)]
    began = time.process_time()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    spent = time.process_time() - began
    if failures:
        raise SystemExit(f"{path}: {len(failures)} requests failed, e.g. status {failures[0]}")
    return spent / (requests // threads * threads) * 1e6


def process_cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of these processes so far (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def under_gunicorn(model: str, connections: int, duration: float, repeats: int) -> dict:
    """Worker CPU per response under wrk, the replaying app served as ``make serve`` serves."""
    from bench.closed_loop import run_wrk
    from tests.gunicorn_server import free_port, worker_pids

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RNNLM_")}
    env.update(RNNLM_MODEL=str(Path(model).resolve()), RNNLM_BIND=f"127.0.0.1:{port}", RNNLM_LOG_LEVEL="WARNING")
    root = Path(__file__).resolve().parent.parent
    server = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c", "service/gunicorn.conf.py",
                               "bench.request_overhead:replay_app()"], cwd=root, env=env, stdout=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        time.sleep(2)  # every worker up
        run_wrk(url, connections, 2, 5, 2)  # warm up
        pids = [server.pid, *worker_pids(server.pid)]
        costs, rates = [], []
        for _ in range(repeats):
            before = process_cpu_seconds(pids)
            row = run_wrk(url, connections, duration, 5, 2)
            spent = process_cpu_seconds(pids) - before
            responses = row["responses_per_s"] * row["seconds"]
            costs.append(spent / responses * 1e6)
            rates.append(row["responses_per_s"])
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"connections": connections, "gunicorn_cpu_us_per_response": round(statistics.median(costs), 1),
            "responses_per_s": statistics.median(rates)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="artifacts/model.joblib")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--gunicorn", action="store_true")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    if args.gunicorn:
        print(json.dumps(under_gunicorn(args.model, args.connections, args.duration, args.repeats)))
        return 0
    os.environ.setdefault("RNNLM_LOG_LEVEL", "WARNING")
    app = replay_app(args.model)
    for path in BODIES:
        run(app, path, args.threads * 4, args.threads)  # warm up
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        threading.setprofile(lambda *_: profiler.enable())  # every new thread is profiled too
        profiler.enable()
        run(app, "/generate", args.requests, args.threads)
        profiler.disable()
        threading.setprofile(None)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)
        return 0
    row = {"threads": args.threads, "requests": args.requests}
    for path in BODIES:
        runs = [run(app, path, args.requests, args.threads) for _ in range(args.repeats)]
        row[f"{path} cpu_us_per_request"] = round(statistics.median(runs), 1)
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Closed-loop load with wrk: each of N connections sends a one-sentence POST /generate as soon
as its previous answer is in.

    URL=http://127.0.0.1:8000 .venv/bin/python bench/closed_loop.py [--connections 1,16,64,256]
        [--duration 15]
    .venv/bin/python bench/closed_loop.py --tree /work/wt-old --tree . --model artifacts/model.joblib

For each connection count, one JSON line: responses and answered (2xx) per second, the latency
percentiles over all responses (ms), how many were refused (429) or got any other status, and
how many timed out (``--timeout``). The request body and the counting are in bench/generate.lua.
``--by-status`` runs the same closed loop from Python (asyncio, bench/load.py's connections)
instead of wrk, to add the latency percentiles of each status (wrk's script cannot time one
response): how fast a 429 comes, for instance.
With ``--tree`` (repeatable) it starts each checkout's own gunicorn with that checkout's own
settings (``make serve``'s command, its .venv), serving ``--model`` (a relative path is taken
in each tree: each serves its own default model, as its users would), runs the rows against it
and stops it, one tree after the other: an old-against-new comparison in one run.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LUA = Path(__file__).resolve().parent / "generate.lua"


def run_wrk(url: str, connections: int, duration: float, timeout: float, threads: int) -> dict:
    command = ["wrk", f"-t{min(threads, connections)}", f"-c{connections}", f"-d{duration:g}s",
               f"--timeout={timeout:g}s", "-s", str(LUA), f"{url.rstrip('/')}/generate"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    statuses = {int(code): int(count) for code, count in re.findall(r"^STATUS (\d+) (\d+)$", out, re.M)}
    seconds = float(re.search(r"^SECONDS ([\d.]+)$", out, re.M).group(1))
    percentile = {p: float(v) for p, v in re.findall(r"^P(\d+) ([\d.]+)$", out, re.M)}
    responses = sum(statuses.values())
    answered = sum(count for code, count in statuses.items() if 200 <= code < 300)
    return {
        "connections": connections, "seconds": round(seconds, 1),
        "responses_per_s": round(responses / seconds, 1), "answered_2xx_per_s": round(answered / seconds, 1),
        "p50_ms": percentile["50"], "p90_ms": percentile["90"], "p99_ms": percentile["99"],
        "refused_429": statuses.get(429, 0),
        "other_non_2xx": responses - answered - statuses.get(429, 0),
        "timeouts": int(re.search(r"^TIMEOUTS (\d+)$", out, re.M).group(1)),
    }


def run_python(url: str, connections: int, duration: float, timeout: float) -> dict:
    """The closed loop from asyncio, with the latencies of each status."""
    import asyncio
    from urllib.parse import urlsplit

    from bench.load import Connections, latency_summary

    body = re.search(r"wrk.body = '(.*)'", LUA.read_text()).group(1).encode()
    parts = urlsplit(url)
    latencies: dict[str, list[float]] = {}

    async def loop(pool: Connections, until: float) -> None:
        while time.perf_counter() < until:
            began = time.perf_counter()
            try:
                status = str(await asyncio.wait_for(pool.request(body), timeout))
            except asyncio.TimeoutError:
                status = "timeout"
            latencies.setdefault(status, []).append(time.perf_counter() - began)

    async def run() -> float:
        pool = Connections(parts.hostname or "127.0.0.1", parts.port or 80, connections)
        began = time.perf_counter()
        await asyncio.gather(*(loop(pool, began + duration) for _ in range(connections)))
        for _, writer in pool.idle:
            writer.close()
        return time.perf_counter() - began

    seconds = asyncio.run(run())
    every = sorted(t for times in latencies.values() for t in times)
    answered = sum(len(times) for status, times in latencies.items() if status.startswith("2"))
    return {
        "connections": connections, "client": "python", "seconds": round(seconds, 1),
        "responses_per_s": round(len(every) / seconds, 1), "answered_2xx_per_s": round(answered / seconds, 1),
        **latency_summary(every), "statuses": {status: len(times) for status, times in sorted(latencies.items())},
        "by_status": {status: latency_summary(sorted(times)) for status, times in sorted(latencies.items())},
    }


def start_tree(tree: Path, model: Path, port: int, settings: dict[str, str]) -> subprocess.Popen:
    """``make serve``'s gunicorn of ``tree`` on loopback, healthy: the caller's RNNLM_ settings
    are dropped, ``settings`` (e.g. RNNLM_WORKERS) added."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RNNLM_")}
    env.update(RNNLM_MODEL=str(model), RNNLM_BIND=f"127.0.0.1:{port}", RNNLM_LOG_LEVEL="WARNING", **settings)
    server = subprocess.Popen([str(tree / ".venv" / "bin" / "gunicorn"), "-c", "service/gunicorn.conf.py",
                               "service.wsgi:app"], cwd=tree, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:  # it said why on stderr (a missing model file, say)
            raise SystemExit(f"{tree}: gunicorn exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
                if answer.status == 200:
                    time.sleep(2)  # every worker up
                    return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit(f"{tree}: gunicorn not healthy after 60 s")


@contextmanager
def served_tree(tree: Path, model: Path, port: int, settings: dict[str, str]) -> Iterator[subprocess.Popen]:
    """``start_tree``'s gunicorn, stopped when the block ends."""
    server = start_tree(tree, model, port, settings)
    try:
        yield server
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("URL", "http://127.0.0.1:8000"))
    parser.add_argument("--connections", type=lambda v: [int(c) for c in v.split(",")], default=[1, 16, 64, 256])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per connection count")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds before wrk counts a request timed out")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--by-status", action="store_true", help="the closed loop from Python, timed by status")
    parser.add_argument("--tree", action="append", type=Path, help="start this checkout's server (repeatable)")
    parser.add_argument("--model", type=Path, default=Path("artifacts/model.joblib"),
                        help="with --tree: relative to each tree")
    parser.add_argument("--port", type=int, default=18731)
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment setting for the servers --tree starts (repeatable)")
    args = parser.parse_args()
    settings = dict(item.split("=", 1) for item in args.setting)
    for tree in args.tree or [None]:
        with (nullcontext() if tree is None
              else served_tree(tree.resolve(), tree.resolve() / args.model, args.port, settings)):
            url = args.url if tree is None else f"http://127.0.0.1:{args.port}"
            for connections in args.connections:
                row = (run_python(url, connections, args.duration, args.timeout) if args.by_status
                       else run_wrk(url, connections, args.duration, args.timeout, args.threads))
                print(json.dumps({"server": str(tree or url), **settings, **row}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Open-loop load on ``POST /generate``: ``python bench/load.py --rate 200 --duration 60``.

Requests are sent on a fixed schedule (i / rate seconds after the start) whether or not earlier
ones have been answered, and each latency is measured from its scheduled time, so a server that
falls behind shows it in the latency instead of silently slowing the client down (no coordinated
omission). Without ``--url`` it starts gunicorn with the project's config on loopback, serving
``--model``, and stops it at the end. ``--find-max`` steps the rate up until a step has errors
(or its p99 passes ``--max-p99-ms``) and reports the highest clean rate. ``--tree`` (repeatable) starts
each checkout's own gunicorn instead (``make serve``'s command from that tree's .venv, serving
``--model`` relative to it, as bench/closed_loop.py does), runs everything against it and stops
it, one tree after the other: old against new with one client, ``--tree OLD --tree NEW --tree
OLD --tree NEW`` alternated; each line then names its ``server``. ``--rates 600,100`` runs
phases one after the other on the same server (overload, then recovery); ``--fault kill-worker``
SIGKILLs a worker, ``--fault reload`` sends the master SIGHUP, halfway through the first phase.
One JSON line per rate.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.gunicorn_server import Server, free_port, server_env, worker_pids  # noqa: E402

# sampling asked for explicitly: TGI's rule (greedy unless do_sample) is the default since issue 12
ONE_SENTENCE = {"inputs": "", "parameters": {"max_new_tokens": 50, "do_sample": True}}


class Connections:
    """Keep-alive connections to the server, reused; a new one is opened when all are busy."""

    def __init__(self, host: str, port: int, limit: int):
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(limit)
        self.resent: list[float] = []  # when a reused connection answered nothing and the request went again

    async def request(self, body: bytes) -> int:
        """POST /generate on a free connection; the status (0 for a dropped connection).

        A reused connection that the server closed while idle (gunicorn's keep-alive timeout)
        answers nothing, or a reset when the request crossed the close on the way; the request is
        then sent again on a new one, as HTTP clients do, and its time noted in ``resent`` (a
        worker killed while serving a request on a reused connection looks the same to the
        client: ``run_rate`` reports those of the second after a fault apart)."""
        async with self.slots:
            reused = bool(self.idle)
            reader, writer = self.idle.pop() if reused else await asyncio.open_connection(self.host, self.port)
            try:
                request = (b"POST /generate HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                           b"Content-Length: %d\r\n\r\n%s" % (self.host.encode(), len(body), body))
                writer.write(request)
                try:
                    status_line = await reader.readline()
                except ConnectionResetError:
                    if not reused:
                        raise
                    status_line = b""  # closed by the server as the request went out: the same case
                if not status_line and reused:
                    self.resent.append(time.perf_counter())
                    writer.close()
                    reader, writer = await asyncio.open_connection(self.host, self.port)
                    writer.write(request)
                    status_line = await reader.readline()
                length, close = 0, False
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                    elif name.lower() == "connection" and value.strip().lower() == "close":
                        close = True
                await reader.readexactly(length)
                status = int(status_line.split()[1])
            except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
                writer.close()
                return 0
            if close:
                writer.close()
            else:
                self.idle.append((reader, writer))
            return status


def percentile(sorted_values: list[float], share: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


def inject(fault: str, master: int) -> str:
    """Kill a worker of gunicorn's ``master`` (its lowest pid), or ask the master to reload."""
    if fault == "reload":
        os.kill(master, signal.SIGHUP)
        return f"SIGHUP to master {master}"
    workers = sorted(worker_pids(master))
    os.kill(workers[0], signal.SIGKILL)
    return f"SIGKILL to worker {workers[0]}"


async def run_rate(url: str, rate: float, duration: float, connections: int,
                   fault: Callable[[], str] | None = None) -> dict:
    """Send ``rate`` requests per second for ``duration`` seconds; ``fault`` (if any) is called
    halfway through and returns what it did, reported as ``fault``; ``resent`` counts requests
    sent again after a reused connection answered nothing."""
    parts = urlsplit(url)
    pool = Connections(parts.hostname or "127.0.0.1", parts.port or 80, connections)
    latencies: dict[str, list[float]] = {}
    injected: list[tuple[str, float]] = []  # what the fault did, and when
    count = int(rate * duration)
    start = time.perf_counter() + 0.2

    async def one(i: int) -> None:
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        body = json.dumps({**ONE_SENTENCE, "parameters": {**ONE_SENTENCE["parameters"], "seed": i}}).encode()
        status = await pool.request(body)
        latencies.setdefault(str(status), []).append(time.perf_counter() - scheduled)

    async def fault_halfway() -> None:
        await asyncio.sleep(max(0.0, start + duration / 2 - time.perf_counter()))
        injected.append((fault(), time.perf_counter()))

    await asyncio.gather(*(one(i) for i in range(count)), *([fault_halfway()] if fault else []))
    elapsed = time.perf_counter() - start
    for _, writer in pool.idle:
        writer.close()
    every = sorted(t for times in latencies.values() for t in times)
    errors = sum(len(times) for status, times in latencies.items() if status != "200")
    return {
        "rate": rate, "duration_s": duration, "requests": count, "errors": errors,
        "statuses": {status: len(times) for status, times in sorted(latencies.items())},
        "achieved_rate": round(count / elapsed, 1), "resent": len(pool.resent),
        **({"fault": injected[0][0], "resent_in_the_second_after_the_fault":
            sum(injected[0][1] <= t < injected[0][1] + 1 for t in pool.resent)} if injected else {}),
        **latency_summary(every),
        "by_status": {status: latency_summary(sorted(times)) for status, times in sorted(latencies.items())},
    }


def latency_summary(ordered: list[float]) -> dict[str, float]:
    return {f"{name}_ms": round(1000 * percentile(ordered, share), 1)
            for name, share in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))}


def start_gunicorn(model: str) -> Server:
    """gunicorn with the project's config on a free loopback port, serving ``model``, every
    worker up; the caller's RNNLM_ settings (workers, threads, limits) are passed on."""
    url = f"http://127.0.0.1:{free_port()}"
    server = Server(server_env(RNNLM_MODEL=model, RNNLM_BIND=url.removeprefix("http://"),
                               RNNLM_LOG_LEVEL="WARNING", **{k: v for k, v in os.environ.items() if k.startswith("RNNLM_")}), url)
    server.wait_until_healthy()
    time.sleep(2)  # every worker up, not just the first
    return server


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--url", default=None, help="a running service; default: start gunicorn with the project's config")
    p.add_argument("--model", default="artifacts/model.joblib",
                   help="model file the started gunicorn serves (with --tree: relative to each tree)")
    p.add_argument("--tree", action="append", type=Path, default=None,
                   help="start this checkout's own gunicorn and load it (repeatable: one after the other)")
    p.add_argument("--rate", type=float, default=100.0, help="requests per second")
    p.add_argument("--rates", type=lambda v: [float(r) for r in v.split(",")], default=None,
                   help="phases at these rates, one after the other (e.g. 600,100: overload, then recovery)")
    p.add_argument("--fault", choices=["kill-worker", "reload"], default=None,
                   help="halfway through the first phase (needs the gunicorn this script starts)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds at each rate")
    p.add_argument("--connections", type=int, default=256, help="most connections open at once")
    p.add_argument("--find-max", action="store_true", help="step the rate up from --rate by --step")
    p.add_argument("--step", type=float, default=50.0, help="rate increase per step of --find-max")
    p.add_argument("--max-p99-ms", type=float, default=1000.0, help="--find-max stops at a step whose p99 is above this")
    return p


def main() -> int:
    args = build_parser().parse_args()
    if args.tree and args.url:
        print("load.py: --tree starts its own servers; leave out --url", file=sys.stderr)
        return 2
    if args.fault and args.url:
        print("load.py: --fault needs a gunicorn this script starts (no --url)", file=sys.stderr)
        return 2
    if not args.url and not args.tree and not Path(args.model).is_file():
        print(f"load.py: no model file {args.model}; train one (make model) or pass --model/--url", file=sys.stderr)
        return 1
    for tree in args.tree or [None]:
        with serving(args, tree) as (url, master):
            label = {"server": str(tree)} if tree is not None else {}
            fault_once = (lambda: inject(args.fault, master)) if args.fault else None
            for result in run_rates(args, url, fault_once):
                print(json.dumps({**label, **result}), flush=True)
    return 0


@contextmanager
def serving(args: argparse.Namespace, tree: Path | None) -> Iterator[tuple[str, int | None]]:
    """The URL to load and gunicorn's master pid (None for ``--url``): ``--url`` as given, else
    ``tree``'s own gunicorn, else this checkout's, stopped at the end."""
    if args.url:
        yield args.url, None
    elif tree is not None:
        from bench.closed_loop import served_tree

        port = free_port()
        with served_tree(tree.resolve(), tree.resolve() / args.model, port, {}) as process:
            yield f"http://127.0.0.1:{port}", process.pid
    else:
        server = start_gunicorn(args.model)
        try:
            yield server.base_url, server.process.pid
        finally:
            server.stop()


def run_rates(args: argparse.Namespace, url: str, fault_once: Callable[[], str] | None) -> Iterator[dict]:
    """Each phase's result (``--rates``), or each step's (``--rate``, ``--find-max``) and then
    the highest clean rate; the fault in the first phase or step only."""
    if args.rates:
        for phase, rate in enumerate(args.rates):
            yield asyncio.run(run_rate(url, rate, args.duration, args.connections, fault_once if phase == 0 else None))
        return
    rate, best = args.rate, None
    while True:
        result = asyncio.run(run_rate(url, rate, args.duration, args.connections, fault_once if best is None else None))
        yield result
        clean = result["errors"] == 0 and result["p99_ms"] <= args.max_p99_ms
        if clean:
            best = result
        if not args.find_max or not clean:
            break
        rate += args.step
    if args.find_max:
        yield {"highest_clean_rate": best and best["rate"], "at_that_rate": best}


if __name__ == "__main__":
    sys.exit(main())

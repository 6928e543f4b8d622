"""Faults under open-loop load on a real gunicorn: ``python bench/worker_faults.py --model M``.

Two runs, one JSON line each. ``kill-worker``: a worker is SIGKILLed halfway through; reported are
the failed requests and how many requests that worker was serving just before (its in-flight
gauge: at most those should fail; the client sends a request again when a reused connection
answers nothing, so those of the killed worker show as ``resent_in_the_second_after_the_fault``
rather than as failures), every non-200 answer
of ``GET /health`` polled throughout (there should be none), and whether gunicorn replaced the
worker. ``reload``: the served file is replaced by ``--new-model`` (default: a copy of ``--model``)
and the master gets SIGHUP halfway through; there should be no failed request, and ``/info``
afterwards should describe the new file.
"""
from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402

from bench.load import inject, run_rate, start_gunicorn  # noqa: E402
from tests.gunicorn_server import Server, worker_pids  # noqa: E402


class HealthWatch:
    """Polls ``GET /health`` every ``interval`` seconds in a thread; counts what was not a 200."""

    def __init__(self, url: str, interval: float = 0.1):
        self.url, self.interval = url, interval
        self.polls, self.failures = 0, []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self.done.wait(self.interval):
                self.polls += 1
                try:
                    status = session.get(f"{self.url}/health", timeout=2).status_code
                except requests.RequestException as exc:
                    status = type(exc).__name__
                if status != 200:
                    self.failures.append(status)

    def __enter__(self) -> "HealthWatch":
        self.thread.start()
        return self

    def __exit__(self, *_) -> None:
        self.done.set()
        self.thread.join()


def under_load(server: Server, args: argparse.Namespace, fault) -> dict:
    """One load run with ``fault`` halfway, /health watched throughout."""
    with HealthWatch(server.base_url) as health:
        result = asyncio.run(run_rate(server.base_url, args.rate, args.duration, args.connections, fault))
    return {**result, "health_polls": health.polls, "health_failures": health.failures}


def in_flight_of(pid: int) -> int:
    """The requests worker ``pid`` is serving: its rnnlm_requests_in_flight gauge, in the file it
    writes to the metrics folder gunicorn's config made (``rnnlm-metrics-*`` in the temporary
    folder; the file's name carries the worker's pid)."""
    from prometheus_client.mmap_dict import MmapedDict

    files = glob.glob(os.path.join(tempfile.gettempdir(), "rnnlm-metrics-*", f"gauge_livesum_{pid}.db"))
    values = [v for path in files for v in MmapedDict.read_all_values_from_file(path)]
    return int(sum(value for key, value, *_ in values if json.loads(key)[1] == "rnnlm_requests_in_flight"))


def kill_worker(server: Server, args: argparse.Namespace) -> dict:
    master = server.process.pid
    before = worker_pids(master)
    held: list[int] = []

    def kill() -> str:
        held.append(in_flight_of(min(worker_pids(master))))  # the worker inject() kills
        return inject("kill-worker", master)

    result = under_load(server, args, kill)
    deadline = time.monotonic() + 30
    while len(worker_pids(master)) < len(before) and time.monotonic() < deadline:
        time.sleep(0.1)
    after = worker_pids(master)
    return {"scenario": "kill-worker", **result, "killed_worker_in_flight": held[0],
            "workers_before": sorted(before), "workers_after": sorted(after),
            "replaced": len(after) == len(before) and after != before}


def reload(server: Server, args: argparse.Namespace, served: Path, new_model: Path) -> dict:
    info_before = requests.get(f"{server.base_url}/info", timeout=5).json()

    def swap_and_hup() -> str:
        staged = served.with_suffix(".new")
        shutil.copyfile(new_model, staged)
        os.replace(staged, served)  # atomic: the master never reads half a file
        os.kill(server.process.pid, signal.SIGHUP)
        return f"replaced {served.name} with {new_model}, SIGHUP to master {server.process.pid}"

    result = under_load(server, args, swap_and_hup)
    time.sleep(3)  # the new workers up
    info_after = requests.get(f"{server.base_url}/info", timeout=5).json()
    keys = ("trained_at", "train_words", "val_perplexity", "hidden_size")
    return {"scenario": "reload", **result,
            "info_before": {k: info_before.get(k) for k in keys}, "info_after": {k: info_after.get(k) for k in keys},
            "info_changed": info_before != info_after}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="artifacts/model.joblib", help="model file served (a copy of it)")
    p.add_argument("--new-model", default=None, help="file swapped in before the SIGHUP (default: --model)")
    p.add_argument("--rate", type=float, default=100.0, help="requests per second")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of load in each run")
    p.add_argument("--connections", type=int, default=256, help="most connections open at once")
    p.add_argument("--only", choices=["kill-worker", "reload"], default=None, help="run one scenario")
    return p


def main() -> int:
    args = build_parser().parse_args()
    model = Path(args.model)
    new_model = Path(args.new_model or args.model)
    for path in (model, new_model):
        if not path.is_file():
            print(f"worker_faults.py: no model file {path}; train one (make model) or pass --model", file=sys.stderr)
            return 1
    with tempfile.TemporaryDirectory(prefix="rnnlm-faults-") as folder:
        served = Path(folder) / "model.joblib"
        shutil.copyfile(model, served)  # the reload replaces this copy, never the caller's file
        server = start_gunicorn(str(served))
        try:
            if args.only in (None, "kill-worker"):
                print(json.dumps(kill_worker(server, args)), flush=True)
            if args.only in (None, "reload"):
                print(json.dumps(reload(server, args, served, new_model)), flush=True)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

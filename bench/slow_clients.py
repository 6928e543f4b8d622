"""Slow clients must not take the service down: hold many connections that send half a request
header, and check that /health and /generate still answer as they did without them.

    URL=http://127.0.0.1:8000 python3 bench/slow_clients.py [--connections 500] [--hold 30]

First a baseline (no slow clients): /health probes and one-sentence /generate requests, one at a
time. Then ``--connections`` sockets each send the first half of a POST header and nothing more
for ``--hold`` seconds (re-opened if the server drops them), while the same probes run. Passes
(exit status 0) if no probe failed, /health's p99 stayed under ``--health-p99-ms`` and
/generate's median stayed within ``--slowdown`` times the baseline's (plus 5 ms for timer
noise). Prints one JSON line. Standard library only, so it runs on any host with Python 3.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import socket
import statistics
import sys
import threading
import time
import urllib.parse

HALF_HEADER = b"POST /generate HTTP/1.1\r\nHost: slow\r\nContent-Type: appli"
GENERATE_BODY = json.dumps({"inputs": "", "parameters": {"num_sentences": 1, "max_new_tokens": 40, "seed": 1}})


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Prober:
    """Sends /health and /generate probes one at a time over fresh connections, recording
    latencies (ms) and failures."""

    def __init__(self, host: str, port: int, timeout: float):
        self.host, self.port, self.timeout = host, port, timeout

    def call(self, method: str, path: str, body: str | None) -> float | None:
        began = time.perf_counter()
        try:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            headers = {"Content-Type": "application/json"} if body is not None else {}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            connection.close()
            if response.status != 200:
                return None
        except OSError:
            return None
        return (time.perf_counter() - began) * 1000

    def run(self, seconds: float, interval: float) -> dict[str, list]:
        """Alternate /health and /generate for ``seconds``, ``interval`` apart."""
        results: dict[str, list] = {"health": [], "generate": [], "failed": []}
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for name, method, path, body in (("health", "GET", "/health", None),
                                             ("generate", "POST", "/generate", GENERATE_BODY)):
                latency = self.call(method, path, body)
                if latency is None:
                    results["failed"].append(name)
                else:
                    results[name].append(latency)
            time.sleep(interval)
        return results


class SlowClients:
    """``count`` sockets that each send half a header and then wait; one the server closes is
    opened again, so the pressure lasts until ``stop``."""

    def __init__(self, host: str, port: int, count: int):
        self.host, self.port, self.count = host, port, count
        self.sockets: list[socket.socket | None] = [None] * count
        self.opened = self.dropped = self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep, daemon=True)

    def _open(self, index: int) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=5)
            sock.sendall(HALF_HEADER)
            sock.setblocking(False)
            self.sockets[index] = sock
            self.opened += 1
        except OSError:
            self.sockets[index] = None
            self.refused += 1

    def _keep(self) -> None:
        for index in range(self.count):
            if self._stop.is_set():
                return
            self._open(index)
        while not self._stop.wait(0.5):
            for index, sock in enumerate(self.sockets):
                if sock is None or self._closed_by_server(sock):
                    if sock is not None:
                        sock.close()
                        self.dropped += 1
                    self._open(index)

    @staticmethod
    def _closed_by_server(sock: socket.socket) -> bool:
        try:
            return sock.recv(4096) == b""  # an answer (e.g. a 408) or an end: either way, done
        except BlockingIOError:
            return False
        except OSError:
            return True

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.sockets:
            if sock is not None:
                sock.close()


def summary(results: dict[str, list]) -> dict[str, float | int]:
    return {
        "health_probes": len(results["health"]),
        "health_p50_ms": round(percentile(results["health"], 0.50), 2),
        "health_p99_ms": round(percentile(results["health"], 0.99), 2),
        "generate_probes": len(results["generate"]),
        "generate_p50_ms": round(statistics.median(results["generate"]), 2) if results["generate"] else None,
        "generate_p99_ms": round(percentile(results["generate"], 0.99), 2),
        "failed": len(results["failed"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--hold", type=float, default=30.0, help="seconds the slow clients hold on")
    parser.add_argument("--baseline", type=float, default=10.0, help="seconds of probes without slow clients")
    parser.add_argument("--interval", type=float, default=0.05, help="pause between probe rounds (s)")
    parser.add_argument("--health-p99-ms", type=float, default=200.0)
    parser.add_argument("--slowdown", type=float, default=1.5, help="largest /generate median ratio allowed")
    args = parser.parse_args()
    url = urllib.parse.urlsplit(os.environ.get("URL", "http://127.0.0.1:8000"))
    host, port = url.hostname or "127.0.0.1", url.port or 80
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, args.connections + 256)), hard))

    prober = Prober(host, port, timeout=5.0)
    baseline = summary(prober.run(args.baseline, args.interval))
    slow = SlowClients(host, port, args.connections)
    slow.start()
    time.sleep(2.0)  # all connections open before measuring
    during = summary(prober.run(max(1.0, args.hold - 2.0), args.interval))
    held = sum(s is not None for s in slow.sockets)
    slow.stop()

    limit_ms = baseline["generate_p50_ms"] * args.slowdown + 5.0 if baseline["generate_p50_ms"] else 0.0
    checks = {
        "no_failed_probes": baseline["failed"] == 0 and during["failed"] == 0,
        "health_p99_under_limit": during["health_p99_ms"] < args.health_p99_ms,
        "generate_unchanged": during["generate_p50_ms"] is not None and during["generate_p50_ms"] <= limit_ms,
        "slow_clients_held": held >= args.connections * 0.9,
    }
    print(json.dumps({
        "url": f"http://{host}:{port}", "connections": args.connections, "hold_s": args.hold,
        "slow_opened": slow.opened, "slow_dropped_by_server": slow.dropped, "slow_refused": slow.refused,
        "slow_open_at_end": held, "baseline": baseline, "with_slow_clients": during,
        "generate_p50_limit_ms": round(limit_ms, 2), "checks": checks, "passed": all(checks.values()),
    }))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

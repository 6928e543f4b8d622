"""service/thread_worker.py: the even share of connections, and a burst of kept-alive connections
spread over a real gunicorn's workers."""
from __future__ import annotations

import collections
import re
import socket
import threading
import time
from pathlib import Path

from service.thread_worker import over_share
from tests.gunicorn_server import start_server


def test_a_worker_over_its_even_share_yields():
    assert not over_share(own=0, total=0, workers=3)
    assert not over_share(own=21, total=63, workers=3)  # 22 of 64 is a third, rounded up
    assert over_share(own=22, total=63, workers=3)
    assert over_share(own=1, total=1, workers=2) and not over_share(own=0, total=1, workers=2)
    assert not over_share(own=40, total=40, workers=1)  # one worker takes everything


def request_on(sock: socket.socket, port: int) -> None:
    sock.sendall(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    answer = b""
    while b'{"status":"ok"}' not in answer.replace(b" ", b""):
        chunk = sock.recv(4096)
        assert chunk, "the connection closed"
        answer += chunk


def test_a_burst_of_kept_alive_connections_spreads_evenly_over_the_workers(tiny_model_path: Path):
    """30 connections opened at once to 3 workers, each then sending requests on: every worker
    serves about a third of them (each connection stays with the worker that accepted it)."""
    server = start_server(tiny_model_path, workers=3)
    port = int(server.base_url.rsplit(":", 1)[1])
    try:
        time.sleep(1.0)  # every worker up
        sockets = [socket.socket() for _ in range(30)]
        connect = [threading.Thread(target=s.connect, args=(("127.0.0.1", port),)) for s in sockets]
        for thread in connect:
            thread.start()
        for thread in connect:
            thread.join(5)
        for sock in sockets:
            request_on(sock, port)
        time.sleep(0.3)  # the access log lines arrive
        pids = [re.search(r"pid=<(\d+)>", line).group(1) for line in server.stdout if "GET /health" in line][-30:]
        per_worker = collections.Counter(pids)
        assert len(per_worker) == 3 and max(per_worker.values()) <= 13, per_worker
        for sock in sockets:
            sock.close()
    finally:
        assert server.stop() == 0

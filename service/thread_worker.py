"""gunicorn's gthread worker with two changes, for the many short requests of a generation
service: a kept-alive connection's next request is served by the thread that answered the last
when it comes soon enough, and a worker that holds more than its share of the connections lets
the others accept new ones first.

Serving on: gthread hands every kept-alive connection back to the worker's main thread after
each response: a pipe write wakes that thread, which registers the socket with its poller, is
woken again when the next request arrives, and submits it to the thread pool, which wakes a pool
thread. Those wake-ups and their bookkeeping run under the worker's GIL for every request. A
client that sends its next request at once (a closed loop, a proxy's kept-alive upstream
connection) is instead served on by the same thread, which waits for it at most
``LINGER_SECONDS`` with the GIL released; a connection quiet for longer goes back to the poller
as before, so a slow or idle client holds a thread no longer than that.

Sharing: a kept-alive connection stays with the worker that accepted it, and every worker's
poller wakes for a new connection; the first to call accept takes it. So a burst of connections
spreads unevenly (64 wrk connections over 3 workers: 8/14/42, 20/23/21, 14/23/27), and the worker
with the most runs the largest batch and queue, which sets the p99. Each worker publishes how many
connections it holds (``CONNECTIONS``, shared memory made in the master before it forks); one
that would hold more than its even share of all of them, the new one counted, waits
``YIELD_SECONDS`` before accepting, while the others take it, and accepts it after all if none did.
"""
from __future__ import annotations

import math
import select
import time

from gunicorn.workers.gthread import ThreadWorker

from service.concurrency import ProcessCounts

# Long enough for a client on the same host or network to answer one response with its next
# request; short enough that idle connections give their thread back at once for practical purposes.
LINGER_SECONDS = 0.005
# Long enough for another worker's poller, woken by the same connection, to accept it first.
YIELD_SECONDS = 0.002

CONNECTIONS = ProcessCounts()  # made when gunicorn loads this class, in the master


def over_share(own: int, total: int, workers: int) -> bool:
    """Whether a worker holding ``own`` of ``total`` connections would hold more than its even
    share of all of them by taking one more."""
    return own + 1 > math.ceil((total + 1) / workers)


class ServiceThreadWorker(ThreadWorker):
    """``worker_class`` of service/gunicorn.conf.py."""

    def handle(self, conn):  # type: ignore[no-untyped-def]  (gunicorn's own signature)
        keepalive = super().handle(conn)
        while keepalive is True and self.alive and not conn.is_http2 and _next_request_soon(conn):
            keepalive = super().handle(conn)
        return keepalive

    def accept(self, listener):  # type: ignore[no-untyped-def]
        with CONNECTIONS.lock:
            CONNECTIONS.set_own(self.nr_conns)
            crowded = over_share(self.nr_conns, CONNECTIONS.total(), self.cfg.workers)
        if crowded:
            time.sleep(YIELD_SECONDS)
        super().accept(listener)
        self._publish_connections()

    def finish_request(self, conn, fs):  # type: ignore[no-untyped-def]
        super().finish_request(conn, fs)
        self._publish_connections()

    def murder_keepalived(self, force=False):  # type: ignore[no-untyped-def]
        super().murder_keepalived(force)
        self._publish_connections()

    def _publish_connections(self) -> None:
        with CONNECTIONS.lock:
            CONNECTIONS.set_own(self.nr_conns)


def forget_worker(pid: int) -> None:
    """A worker has exited (gunicorn's child_exit, in the master): its connections are gone."""
    CONNECTIONS.forget_process(pid)


def _next_request_soon(conn) -> bool:  # type: ignore[no-untyped-def]
    """Whether the connection's next request has begun (bytes read ahead, or readable) within
    the linger time; a plain socket only (TLS buffers bytes the poll cannot see)."""
    if conn.parser.unreader.buf.getvalue():
        return True
    if conn.cfg.is_ssl:
        return False
    poll = select.poll()  # (select.select fails on descriptors past 1023)
    poll.register(conn.sock, select.POLLIN)
    return bool(poll.poll(LINGER_SECONDS * 1000))

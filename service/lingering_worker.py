"""gunicorn's gthread worker, with a kept-alive connection's next request served by the thread
that answered the last one when it comes soon enough.

gthread hands every kept-alive connection back to the worker's main thread after each response:
a pipe write wakes that thread, which registers the socket with its poller, is woken again
when the next request arrives, and submits it to the thread pool, which wakes a pool thread.
Those three wake-ups and their bookkeeping run under the worker's GIL for every request. A
client that sends its next request at once (a closed loop, a proxy's kept-alive upstream
connection) is instead served on by the same thread, which waits for it at most
``LINGER_SECONDS`` with the GIL released; a connection quiet for longer goes back to the poller
as before, so a slow or idle client holds a thread no longer than that.
"""
from __future__ import annotations

import select

from gunicorn.workers.gthread import ThreadWorker

# Long enough for a client on the same host or network to answer one response with its next
# request; short enough that idle connections give their thread back at once for practical purposes.
LINGER_SECONDS = 0.005


class LingeringThreadWorker(ThreadWorker):
    """``worker_class`` of service/gunicorn.conf.py."""

    def handle(self, conn):  # type: ignore[no-untyped-def]  (gunicorn's own signature)
        keepalive = super().handle(conn)
        while keepalive is True and self.alive and not conn.is_http2 and _next_request_soon(conn):
            keepalive = super().handle(conn)
        return keepalive


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

"""RNNLM_METRICS_BIND: GET /metrics on a listener of its own, and only there.

gunicorn then listens on RNNLM_BIND and on this address. Which one a request came in on is told
by the local address of its connection (``gunicorn.socket``), which a client cannot choose;
gunicorn fills SERVER_NAME and SERVER_PORT from the Host header, which it can. TCP listeners
are told apart by port, so the two binds must use different ports.
"""
from __future__ import annotations

import socket
from typing import Any

from service.config import bind_port


def came_in_on(environ: dict[str, Any], bind: str) -> bool:
    """Whether the request of ``environ`` arrived on the listener of ``bind``; False when the
    server is not gunicorn (no connection socket to ask)."""
    connection = environ.get("gunicorn.socket")
    if not isinstance(connection, socket.socket):
        return False
    local = connection.getsockname()
    if bind.startswith("unix:"):
        return local == bind[len("unix:"):]
    return isinstance(local, tuple) and local[1] == bind_port(bind, "RNNLM_METRICS_BIND")

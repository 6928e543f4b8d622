"""The container's HEALTHCHECK: ``python -m service.healthcheck``.

Asks GET /health on the address gunicorn listens on, RNNLM_BIND (HOST:PORT, a wildcard host
meaning this machine, or unix:PATH), so moving the service moves its check too. Exit status 0
when the answer is 200; otherwise 1, with one line saying why.
"""
from __future__ import annotations

import http.client
import os
import socket
import sys
from collections.abc import Mapping

from service.config import DEFAULT_BIND, ConfigError, bind_port, env_str

TIMEOUT_SECONDS = 4.0
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1", "[::]": "::1"}


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (gunicorn's ``unix:PATH`` bind)."""

    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def connection_to(bind: str, timeout: float = TIMEOUT_SECONDS) -> http.client.HTTPConnection:
    """A connection to the listener of ``bind``; ConfigError for a bind it cannot read."""
    port = bind_port(bind, "RNNLM_BIND")
    if port is None:
        return UnixHTTPConnection(bind[len("unix:"):], timeout)
    host = bind.rpartition(":")[0]
    host = _WILDCARDS.get(host, host.strip("[]"))
    return http.client.HTTPConnection(host, port, timeout=timeout)


def main(environ: Mapping[str, str] | None = None) -> int:
    bind = env_str(os.environ if environ is None else environ, "RNNLM_BIND", DEFAULT_BIND)
    try:
        connection = connection_to(bind)
        connection.request("GET", "/health")
        status = connection.getresponse().status
        connection.close()
    except (ConfigError, OSError, http.client.HTTPException) as exc:
        print(f"healthcheck: {bind}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"healthcheck: {bind}: GET /health answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""gunicorn's access log, the same lines for less CPU: gunicorn works out and quotes every atom it
knows of a request (about 60: each request and response header and environ entry) before
formatting the line, while the format names eleven; here each atom is worked out and quoted when
the format reads it."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from gunicorn.glogging import Logger


class QuotedOnRead(Mapping):
    """A request's atoms as gunicorn's SafeAtoms gives them: double quotes escaped, ``{name}i``,
    ``{name}o`` and ``{name}e`` in any case, and ``-`` for an atom the request has not."""

    __slots__ = ("_atoms",)

    def __init__(self, atoms: Mapping[str, Any]):
        self._atoms = atoms

    def __getitem__(self, key: str) -> Any:
        value = self._atoms.get(key.lower() if key.startswith("{") else key, "-")
        return value.replace('"', '\\"') if isinstance(value, str) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._atoms)

    def __len__(self) -> int:
        return len(self._atoms)

    def __bool__(self) -> bool:  # logging asks; the length would work out every atom
        return bool(self._atoms)


def _status(resp: Any) -> Any:
    status = resp.status
    return status.split(None, 1)[0] if isinstance(status, str) else status


def _sent(resp: Any) -> Any:
    return getattr(resp, "sent", None)


# gunicorn's atoms that are not headers, environ entries or the time, as its Logger.atoms works them
# out: (response, request, environ, request time, logger) -> value
_PLAIN_ATOMS: dict[str, Callable[[Any, Any, dict, Any, Logger], Any]] = {
    "h": lambda resp, req, environ, t, log: environ.get("REMOTE_ADDR", "-"),
    "l": lambda resp, req, environ, t, log: "-",
    "u": lambda resp, req, environ, t, log: log._get_user(environ) or "-",
    "r": lambda resp, req, environ, t, log: "%s %s %s" % (
        environ["REQUEST_METHOD"], environ["RAW_URI"], environ["SERVER_PROTOCOL"]),
    "s": lambda resp, req, environ, t, log: _status(resp),
    "m": lambda resp, req, environ, t, log: environ.get("REQUEST_METHOD"),
    "U": lambda resp, req, environ, t, log: environ.get("PATH_INFO"),
    "q": lambda resp, req, environ, t, log: environ.get("QUERY_STRING"),
    "H": lambda resp, req, environ, t, log: environ.get("SERVER_PROTOCOL"),
    "b": lambda resp, req, environ, t, log: _sent(resp) is not None and str(resp.sent) or "-",
    "B": lambda resp, req, environ, t, log: _sent(resp),
    "f": lambda resp, req, environ, t, log: environ.get("HTTP_REFERER", "-"),
    "a": lambda resp, req, environ, t, log: environ.get("HTTP_USER_AGENT", "-"),
    "T": lambda resp, req, environ, t, log: t.seconds,
    "D": lambda resp, req, environ, t, log: (t.seconds * 1000000) + t.microseconds,
    "M": lambda resp, req, environ, t, log: (t.seconds * 1000) + int(t.microseconds / 1000),
    "L": lambda resp, req, environ, t, log: "%d.%06d" % (t.seconds, t.microseconds),
    "p": lambda resp, req, environ, t, log: "<%s>" % os.getpid(),
}


def _pairs(source: Any) -> Any:
    """Name-value pairs of a header list or mapping (as gunicorn's Logger.atoms reads them)."""
    headers = source.headers if hasattr(source, "headers") else source
    return headers.items() if hasattr(headers, "items") else headers


class LazyAtoms(Mapping):
    """The atoms gunicorn's Logger.atoms gives, each worked out when it is read (the time ``t``
    when they are made, so a handler that formats later logs the same line). ``{name}i``,
    ``{name}o`` and ``{name}e`` (lower case) are the last request header, response header or
    environ entry of that name in any case, as in gunicorn's dictionary. Iterating works them
    all out (gunicorn's own dictionary)."""

    __slots__ = ("_resp", "_req", "_environ", "_time", "_log", "_now", "_all")

    def __init__(self, resp: Any, req: Any, environ: dict, request_time: Any, log: Logger):
        self._resp, self._req, self._environ, self._time, self._log = resp, req, environ, request_time, log
        self._now = log.now()  # the time of the request's end, even for a handler that formats later
        self._all: dict[str, Any] | None = None

    def __getitem__(self, key: str) -> Any:
        if key == "t":
            return self._now
        plain = _PLAIN_ATOMS.get(key)
        if plain is not None:
            return plain(self._resp, self._req, self._environ, self._time, self._log)
        if key[:1] == "{" and key[-2:] in ("}i", "}o", "}e"):
            name, kind = key[1:-2], key[-1]
            pairs = _pairs(self._req) if kind == "i" else _pairs(self._resp) if kind == "o" else self._environ.items()
            found = [value for header, value in pairs if header.lower() == name]
            if found:
                return found[-1]
        raise KeyError(key)

    def _every_atom(self) -> dict[str, Any]:
        if self._all is None:
            self._all = {**Logger.atoms(self._log, self._resp, self._req, self._environ, self._time), "t": self._now}
        return self._all

    def __iter__(self) -> Iterator[str]:
        return iter(self._every_atom())

    def __len__(self) -> int:
        return len(self._every_atom())

    def __bool__(self) -> bool:
        return True  # the plain atoms are always there


class AccessLogger(Logger):
    """``logger_class`` of service/gunicorn.conf.py."""

    atoms_wrapper_class = QuotedOnRead

    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> LazyAtoms:  # type: ignore[override]
        return LazyAtoms(resp, req, environ, request_time, self)

"""gunicorn's access log, the same lines for less CPU: gunicorn works out and quotes every atom it
knows of a request (about 60: each request and response header and environ entry) before
formatting the line, while the format names eleven; here gunicorn works out only its plain atoms,
and a header or environ atom is looked up and quoted when the format reads it."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
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


class _WithoutHeaders:
    """The response as gunicorn's Logger.atoms reads it, less its headers (their atoms are read
    lazily)."""

    __slots__ = ("status", "sent")
    headers: tuple = ()

    def __init__(self, resp: Any):
        self.status = resp.status
        if hasattr(resp, "sent"):
            self.sent = resp.sent


class _EnvironWithoutItems(dict):
    """The environ as gunicorn's Logger.atoms reads it, less its ``{name}e`` atoms."""

    def items(self) -> Any:  # type: ignore[override]
        return ()


def _plain_atoms(resp: Any, environ: dict, request_time: Any, log: Logger) -> dict[str, Any]:
    """gunicorn's own atoms that are neither headers nor environ entries (the time among them)."""
    return Logger.atoms(log, _WithoutHeaders(resp), (), _EnvironWithoutItems(environ), request_time)


def _pairs(source: Any) -> Any:
    """Name-value pairs of a header list or mapping (as gunicorn's Logger.atoms reads them)."""
    headers = source.headers if hasattr(source, "headers") else source
    return headers.items() if hasattr(headers, "items") else headers


class LazyAtoms(Mapping):
    """The atoms gunicorn's Logger.atoms gives: its plain ones (the time ``t`` among them) when
    they are made, so a handler that formats later logs the same line; ``{name}i``,
    ``{name}o`` and ``{name}e`` (lower case) are the last request header, response header or
    environ entry of that name in any case, as in gunicorn's dictionary, when read. Iterating works them
    all out (gunicorn's own dictionary)."""

    __slots__ = ("_resp", "_req", "_environ", "_time", "_log", "_plain", "_all")

    def __init__(self, resp: Any, req: Any, environ: dict, request_time: Any, log: Logger):
        self._resp, self._req, self._environ, self._time, self._log = resp, req, environ, request_time, log
        # made now, not when first read, for the time atom is the request's end even for a handler
        # that formats later; the format reads plain atoms on every line anyway
        self._plain = _plain_atoms(resp, environ, request_time, log)
        self._all: dict[str, Any] | None = None

    def __getitem__(self, key: str) -> Any:
        plain = self._plain.get(key, self)
        if plain is not self:
            return plain
        if key[:1] == "{" and key[-2:] in ("}i", "}o", "}e"):
            name, kind = key[1:-2], key[-1]
            pairs = _pairs(self._req) if kind == "i" else _pairs(self._resp) if kind == "o" else self._environ.items()
            found = [value for header, value in pairs if header.lower() == name]
            if found:
                return found[-1]
        raise KeyError(key)

    def _every_atom(self) -> dict[str, Any]:
        if self._all is None:
            self._all = {**Logger.atoms(self._log, self._resp, self._req, self._environ, self._time),
                         "t": self._plain["t"]}
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

"""gunicorn's access log, the same lines for less CPU: gunicorn quotes every atom it knows of a
request (about 60: each request and response header and environ entry) before formatting the
line, while the format names eleven; here each is quoted when the format asks for it."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from gunicorn.glogging import Logger


class QuotedOnRead(Mapping):
    """A request's atoms as gunicorn's SafeAtoms gives them: double quotes escaped, ``{name}i``,
    ``{name}o`` and ``{name}e`` in any case, and ``-`` for an atom the request has not."""

    __slots__ = ("_atoms",)

    def __init__(self, atoms: dict[str, Any]):
        self._atoms = atoms

    def __getitem__(self, key: str) -> Any:
        value = self._atoms.get(key.lower() if key.startswith("{") else key, "-")
        return value.replace('"', '\\"') if isinstance(value, str) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._atoms)

    def __len__(self) -> int:
        return len(self._atoms)


class AccessLogger(Logger):
    """``logger_class`` of service/gunicorn.conf.py."""

    atoms_wrapper_class = QuotedOnRead

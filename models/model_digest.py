"""A SHA-256 over a model file's contents, stored in the file and checked when it is read.

joblib's own format has no checksum, so a file damaged on disk or in a copy can unpickle into
plausible but wrong numbers. The digest covers everything in the saved dict but itself, walked in
a canonical order (dict keys sorted, arrays as dtype, shape and bytes), so it does not depend on
how pickle happened to lay the file out. It guards against accidents, not attackers: whoever can
write the file can recompute it (models.safe_pickle keeps a hostile file from running code).
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

DIGEST_KEY = "sha256"


def _feed(hasher: "hashlib._Hash", value: Any) -> None:
    if isinstance(value, dict):
        hasher.update(b"{%d" % len(value))
        for key in sorted(value, key=repr):
            _feed(hasher, key)
            _feed(hasher, value[key])
    elif isinstance(value, (list, tuple)):
        hasher.update(b"[%d" % len(value))
        for item in value:
            _feed(hasher, item)
    elif isinstance(value, np.ndarray) and value.dtype != object:
        array = np.ascontiguousarray(value)
        hasher.update(f"a{array.dtype.str}{array.shape}".encode())
        hasher.update(array.data)
    elif isinstance(value, str):
        encoded = value.encode("utf-8", "surrogatepass")
        hasher.update(b"s%d:" % len(encoded))
        hasher.update(encoded)
    else:  # numbers, booleans, None, NumPy scalars: their repr is exact
        hasher.update(f"{type(value).__name__}:{value!r}".encode())


def payload_digest(payload: dict[str, Any]) -> str:
    """Hex SHA-256 of everything in ``payload`` except the digest entry itself."""
    hasher = hashlib.sha256()
    _feed(hasher, {key: item for key, item in payload.items() if key != DIGEST_KEY})
    return hasher.hexdigest()


def sealed(payload: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy of ``payload`` carrying its digest."""
    return {**payload, DIGEST_KEY: payload_digest(payload)}

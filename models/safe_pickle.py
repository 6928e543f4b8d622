"""Reading a joblib file without letting it run code: a restricted unpickler.

A pickle can name any importable callable and have the unpickler call it (``os.system``,
``eval``), and a digest stored inside the same file cannot stop that, because the code runs
while the file is read. A model file only needs NumPy arrays in plain containers, so
``find_class`` here hands out a short allowlist and refuses every other name before anything is
called; arrays that hold Python objects (object dtype, whose elements are a nested pickle) are
refused too. What is left is data: the worst a hostile file can do is hold wrong numbers or be
large.
"""
from __future__ import annotations

import builtins
import hashlib
import io
import os
import pickle
from typing import Any

import numpy as np
from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler


class RefusedPickle(pickle.UnpicklingError):
    """The file asks for something a model file never holds; nothing it names was called."""


def _plain_dtype(*args: Any) -> np.dtype:
    dtype = np.dtype(*args)
    _refuse_objects(dtype)
    return dtype


def _plain_reconstruct(subtype: Any, *args: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise RefusedPickle(f"an array of type {subtype!r}; only plain NumPy arrays are read")
    return _reconstruct(subtype, *args)


def _refuse_objects(value: Any) -> None:
    dtype = value if isinstance(value, np.dtype) else getattr(value, "dtype", None)
    if isinstance(dtype, np.dtype) and dtype.hasobject:
        raise RefusedPickle("an array of Python objects (object dtype); model files hold numbers only")


_reconstruct = np.zeros(0).__reduce__()[0]  # numpy.core or numpy._core, whichever this NumPy has
_scalar = np.float64(0).__reduce__()[0]
_frombuffer = np.zeros(1).__reduce_ex__(5)[0]  # protocol 5 pickles an array as a buffer
_NUMPY_CORES = ("numpy.core.multiarray", "numpy._core.multiarray")

# Every global a model file may name. joblib writes each array as a NumpyArrayWrapper (with its
# dtype and ndarray as the class); NumPy's own reducers cover arrays and scalars pickled without
# joblib's help (each call checked for object arrays); the builtins build containers that older pickle protocols spell as calls.
# dtype and _reconstruct are wrapped so that they refuse object arrays as they are made.
ALLOWED: dict[tuple[str, str], Any] = {
    ("joblib.numpy_pickle", "NumpyArrayWrapper"): NumpyArrayWrapper,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _plain_dtype,
    **{(core, "_reconstruct"): _plain_reconstruct for core in _NUMPY_CORES},
    **{(core, "scalar"): _scalar for core in _NUMPY_CORES},
    **{(module, "_frombuffer"): _frombuffer for module in ("numpy.core.numeric", "numpy._core.numeric")},
    **{("builtins", name): getattr(builtins, name) for name in ("set", "frozenset", "bytearray", "complex")},
}

_WRAPPER_FIELDS = {"subclass", "shape", "order", "dtype", "allow_mmap", "numpy_array_alignment_bytes"}


class SafeUnpickler(NumpyUnpickler):
    """joblib's unpickler with ``find_class`` limited to ``ALLOWED`` and object arrays refused."""

    dispatch = NumpyUnpickler.dispatch.copy()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise RefusedPickle(f"it names {module}.{name}, which a model file never holds") from None

    def load_build(self) -> None:
        """Check an array wrapper's state before joblib reads the array it describes (an object
        array would be read as a nested pickle), and whatever the build made after it."""
        state, target = self.stack[-1], self.stack[-2]
        if isinstance(target, NumpyArrayWrapper):
            _check_wrapper_state(state)
        NumpyUnpickler.load_build(self)
        _refuse_objects(self.stack[-1])

    dispatch[pickle.BUILD[0]] = load_build


def _checking_objects(opcode: bytes) -> None:
    """Make the opcode that calls an allowed callable (or class) refuse an object array it made:
    ``ndarray((2,), "O")`` needs no object dtype from the file to make one."""
    make = SafeUnpickler.dispatch[opcode[0]]

    def make_and_check(self: SafeUnpickler) -> None:
        make(self)
        _refuse_objects(self.stack[-1])

    SafeUnpickler.dispatch[opcode[0]] = make_and_check


for _opcode in (pickle.REDUCE, pickle.NEWOBJ, pickle.NEWOBJ_EX, pickle.OBJ, pickle.INST):
    _checking_objects(_opcode)


def _check_wrapper_state(state: Any) -> None:
    if not isinstance(state, dict) or not set(state) <= _WRAPPER_FIELDS:
        raise RefusedPickle("an array header that joblib never writes")
    if state.get("subclass") is not np.ndarray:
        raise RefusedPickle(f"an array of type {state.get('subclass')!r}; only plain NumPy arrays are read")
    if not isinstance(state.get("dtype"), np.dtype):
        raise RefusedPickle("an array header without a NumPy dtype")
    _refuse_objects(state["dtype"])


def safe_load(path: str | os.PathLike, sha256: str | None = None) -> Any:
    """What the joblib file at ``path`` holds, read with ``SafeUnpickler``. With ``sha256``, the
    file's raw bytes must have that digest, checked before a byte is unpickled; the bytes checked
    are then the bytes read (a file swapped in between cannot slip through), at the cost of
    holding the whole file in memory once more while it is read."""
    with open(path, "rb") as handle:
        if sha256 is None:
            return SafeUnpickler(os.fspath(path), handle, ensure_native_byte_order=True).load()
        data = handle.read()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256.lower():
        raise RefusedPickle(f"its SHA-256 is {actual}, not the pinned {sha256.lower()}")
    return SafeUnpickler(os.fspath(path), io.BytesIO(data), ensure_native_byte_order=True).load()

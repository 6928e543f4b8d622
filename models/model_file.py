"""Saving and loading trained models as plain joblib dicts.

The file holds only NumPy arrays and built-in types (no pickled classes), so it stays readable
if the code changes, and it is read with a restricted unpickler (models.safe_pickle) that runs
nothing a file names.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from models.build import build_model
from models.mixture import NgramMixture
from models.model_config import ModelConfig
from models.model_digest import DIGEST_KEY, payload_digest, sealed
from models.recurrent_lm import RecurrentLM
from models.safe_pickle import RefusedPickle, safe_load
from models.vocabulary import Vocabulary

FORMAT_NAME = "rnnlm"
# 2 added the class-based output layer ("softmax", "class_starts") and "ngram"; 3 "cell" (the GRU);
# 4 the SHA-256 of the contents ("sha256", models.model_digest), checked at every load; 5 n-gram
# context keys chained through their suffixes (models.ngram_table; older keys are re-keyed on loading)
FORMAT_VERSION = 5
READABLE_VERSIONS = (1, 2, 3, 4, 5)  # a version-1 file is a full-softmax model; before 3, every model is an RNN


class ModelFileError(Exception):
    """A model file that is missing or cannot be used; the message names the file and why."""

    def __init__(self, path: str | os.PathLike, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


@dataclass
class LoadedModel:
    model: RecurrentLM
    vocab: Vocabulary
    info: dict[str, Any]
    format_version: int = FORMAT_VERSION
    mixture: NgramMixture | None = None  # the n-gram model the RNN is interpolated with, if any


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_dump(payload: dict, path: str | os.PathLike) -> None:
    """Write with joblib, sealed with its digest, to a temporary file beside ``path``, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        # mkstemp makes the file private (0600); a model file is read by other users (the
        # service's own account, say), so give it the permissions a plain open() would
        os.chmod(tmp, 0o666 & ~_current_umask())
        joblib.dump(sealed(payload), tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def model_payload(
    model: RecurrentLM, vocab: Vocabulary, info: dict[str, Any], mixture: NgramMixture | None = None
) -> dict[str, Any]:
    """The plain dict stored on disk for a model, its vocabulary and what is known about it."""
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "config": ModelConfig.of(model).to_payload(),
        "params": {name: np.array(arr) for name, arr in model.parameters().items()},
        "vocabulary": list(vocab.words),
        "counts": [int(c) for c in vocab.counts],
        "info": dict(info),
        "ngram": None if mixture is None else mixture.to_payload(),
        "casing": dict(vocab.casing),  # optional: files without it show words in lower case
    }


def read_payload(path: str | os.PathLike, sha256: str | None = None) -> dict[str, Any]:
    """The stored dict, with a ModelFileError for anything that is not a model file of ours.
    ``sha256``: the digest the file's raw bytes must have (an operator's pin), checked first."""
    if not Path(path).is_file():
        raise ModelFileError(path, "no such file")
    try:
        payload = safe_load(path, sha256)
    except RefusedPickle as exc:
        raise ModelFileError(path, f"refused, nothing in it was run: {exc}") from None
    except Exception as exc:  # joblib raises many kinds for a damaged file
        raise ModelFileError(path, f"cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise ModelFileError(path, "not an rnnlm model file")
    if payload.get("format_version") not in READABLE_VERSIONS:
        raise ModelFileError(
            path, f"format version {payload.get('format_version')!r}, this code reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    if payload["format_version"] >= 4 and payload.get(DIGEST_KEY) != payload_digest(payload):
        problem = "has no SHA-256 of its contents" if DIGEST_KEY not in payload else "contents do not match their SHA-256"
        raise ModelFileError(path, f"{problem}: the file is damaged or was altered; train or copy it again")
    return payload


def model_from_payload(payload: dict[str, Any], path: str | os.PathLike = "<model>") -> LoadedModel:
    """Rebuild the model from its stored config (``ModelConfig``) and the vocabulary, checking shapes and values."""
    try:
        model = build_model(ModelConfig.from_payload(payload["config"]))
        params = payload["params"]
        for name in model.parameter_names:
            if not np.all(np.isfinite(params[name])):
                raise ModelFileError(path, f"parameter {name} holds NaN or infinity")
        model.set_parameters(params)
        vocab = Vocabulary(payload["vocabulary"], payload.get("counts"), payload.get("casing"))
        mixture = NgramMixture.from_payload(payload["ngram"]) if payload.get("ngram") else None
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(path, f"malformed contents ({type(exc).__name__}: {exc})") from None
    if len(vocab) != model.vocab_size:
        raise ModelFileError(path, f"vocabulary has {len(vocab)} words, parameters expect {model.vocab_size}")
    if mixture is not None and mixture.ngram.vocab_size != model.vocab_size:
        raise ModelFileError(path, f"the n-gram model has {mixture.ngram.vocab_size} words, the RNN {model.vocab_size}")
    version = int(payload.get("format_version", FORMAT_VERSION))
    return LoadedModel(model, vocab, dict(payload.get("info", {})), version, mixture)


def save_model(
    path: str | os.PathLike, model: RecurrentLM, vocab: Vocabulary, info: dict[str, Any], mixture: NgramMixture | None = None
) -> None:
    atomic_dump(model_payload(model, vocab, info, mixture), path)


def load_model(path: str | os.PathLike, sha256: str | None = None) -> LoadedModel:
    """Load a model file (``sha256``: see read_payload); raises ModelFileError naming the file and the problem."""
    return model_from_payload(read_payload(path, sha256), path)

"""Model files and checkpoints are read by a restricted unpickler: a hostile file runs nothing.

Each exploit below is a real one: plain ``joblib.load`` runs it (the control), and every loader
of the project refuses it with one line naming the file while the marker it would write stays
absent. Every kind of file train.py writes still loads, to the same contents joblib reads.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest

from models.model_digest import sealed
from models.model_file import ModelFileError, load_model, model_payload, read_payload
from models.rnn import RNN
from models.safe_pickle import RefusedPickle, safe_load
from models.vocabulary import SPECIAL_TOKENS, Vocabulary
from service.app import create_app
from service.config import ConfigError, ServiceConfig
from tests.toy_corpus import write_toy_corpus
from training import train as train_cli
from training.trainer import Trainer

REPO = Path(__file__).resolve().parent.parent


class EvalFormat:
    """Unpickles as eval(): writes the marker and evaluates to "rnnlm", so the format check and
    the stored digest (computed over "rnnlm") both pass if it ever runs."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return eval, (f"open({str(self.marker)!r}, 'w').write('ran') and 'rnnlm'",)


class SystemCall:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


class SubprocessCall:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return subprocess.check_call, (["touch", str(self.marker)],)


class Nested:
    """A class of this module: unpickling it imports it and runs its __setstate__."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __setstate__(self, state):
        Path(state["marker"]).write_text("ran")
        self.__dict__.update(state)


def genuine_payload() -> dict:
    vocab = Vocabulary([*SPECIAL_TOKENS, "a", "b", "c"], [0, 5, 5, 3, 2, 1])
    return sealed(model_payload(RNN(len(vocab), 4, seed=0), vocab, {"note": "genuine"}))


def exploit(tmp_path: Path, kind: str) -> tuple[Path, Path]:
    """A model file carrying exploit ``kind``, and the marker file it writes if it runs."""
    marker = tmp_path / f"{kind}.ran"
    payload = genuine_payload()
    if kind == "eval":
        payload["format"] = EvalFormat(marker)
    elif kind == "os_system":
        payload["info"]["note"] = SystemCall(marker)
    elif kind == "subprocess":
        payload["counts"] = SubprocessCall(marker)
    elif kind == "nested_object":
        payload["info"]["deep"] = {"inside": [1, {"a dict": Nested(marker)}]}
    elif kind == "object_array":  # joblib writes the elements as a nested pickle
        payload["params"]["V"] = np.array([SystemCall(marker), 1.5], dtype=object)
    path = tmp_path / f"{kind}.joblib"
    joblib.dump(payload, path)
    return path, marker


KINDS = ("eval", "os_system", "subprocess", "nested_object", "object_array")


@pytest.mark.parametrize("kind", KINDS)
def test_an_exploit_is_refused_with_one_line_and_runs_nothing(tmp_path, kind):
    path, marker = exploit(tmp_path, kind)
    with pytest.raises(ModelFileError) as refused:
        load_model(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: refused, nothing in it was run: ") and "\n" not in message
    assert ("object dtype" if kind == "object_array" else "which a model file never holds") in message
    assert not marker.exists()
    joblib.load(path)  # the control: the same file, read the ordinary way, runs its code
    assert marker.exists()


@pytest.mark.parametrize("kind", ["eval", "object_array"])
def test_every_command_refuses_an_exploit_before_it_runs(tmp_path, kind):
    path, marker = exploit(tmp_path, kind)
    corpus = write_toy_corpus(tmp_path / "toy.txt")
    commands = {
        "evaluate": ["training/evaluate.py", "--model", str(path), "--corpus", str(corpus)],
        "diagnose": ["training/diagnose.py", "--model", str(path), "--corpus", str(corpus)],
    }
    for name, argv in commands.items():
        done = subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, (name, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and str(path) in done.stderr, (name, done.stderr)
        assert "refused" in done.stderr and "Traceback" not in done.stderr
    # train.py --resume reads OUT.ckpt (make runs it by itself when a checkpoint exists)
    out = tmp_path / "model.joblib"
    path.rename(tmp_path / "model.joblib.ckpt")
    done = subprocess.run([sys.executable, "training/train.py", "--out", str(out), "--resume"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        next(line for line in done.stderr.splitlines() if "refused" in line)], done.stderr
    assert not marker.exists()


def test_the_service_refuses_an_exploit_at_start_and_on_reload(tmp_path, tiny_model_path):
    from service.app import reload_model

    path, marker = exploit(tmp_path, "os_system")
    with pytest.raises(ModelFileError, match="refused"):
        create_app(ServiceConfig(model_path=str(path)))
    served = tmp_path / "served.joblib"
    served.write_bytes(Path(tiny_model_path).read_bytes())
    app = create_app(ServiceConfig(model_path=str(served)))
    served.write_bytes(path.read_bytes())
    assert reload_model(app) is False
    assert not marker.exists()


def handmade(*opcodes: bytes) -> bytes:
    return b"\x80\x02" + b"".join(opcodes) + b"."


@pytest.mark.parametrize("data, problem", [
    # ndarray.__new__(ndarray, (2,), "O"): an object array made without an object dtype in the file
    (handmade(b"cnumpy\nndarray\n", b"K\x02\x85", b"X\x01\x00\x00\x00O", b"\x86\x81"), "object dtype"),
    # the same through REDUCE
    (handmade(b"cnumpy\nndarray\n", b"K\x02\x85", b"X\x01\x00\x00\x00O", b"\x86R"), "object dtype"),
    # a NumPy pickle (not joblib's) of an object array: its dtype is refused as it is made
    (pickle.dumps(np.array(["x", None], dtype=object), protocol=5), "object dtype"),
    (handmade(b"cbuiltins\ngetattr\n"), "builtins.getattr"),
    (handmade(b"ccopyreg\n_reconstructor\n"), "copyreg._reconstructor"),
])
def test_handmade_pickles_are_refused(tmp_path, data, problem):
    path = tmp_path / "handmade.pkl"
    path.write_bytes(data)
    with pytest.raises(RefusedPickle, match=problem):
        safe_load(path)


def test_plain_numpy_pickles_and_containers_still_read(tmp_path):
    value = {"a": np.arange(6.0).reshape(2, 3), "s": {1, 2}, "f": frozenset("ab"), "c": 1 + 2j,
             "n": np.float64(0.5), "b": bytearray(b"xy"), "t": (None, True, "text")}
    for protocol in (3, 5):  # 3 spells sets and frozensets as calls of the builtins
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps(value, protocol=protocol))
        loaded = safe_load(path)
        np.testing.assert_array_equal(loaded.pop("a"), value["a"])
        assert loaded == {k: v for k, v in value.items() if k != "a"}


def assert_same(left, right):
    assert type(left) is type(right)
    if isinstance(left, dict):
        assert list(left) == list(right)
        for key in left:
            assert_same(left[key], right[key])
    elif isinstance(left, (list, tuple)):
        assert len(left) == len(right)
        for a, b in zip(left, right):
            assert_same(a, b)
    elif isinstance(left, np.ndarray):
        assert left.dtype == right.dtype
        np.testing.assert_array_equal(left, right)
    else:
        assert left == right or (left != left and right != right)  # NaN equals NaN here


def toy_args(folder: Path, corpus: Path, *extra: str) -> list[str]:
    return ["--corpus", str(corpus), "--vocab-size", "40", "--hidden", "8", "--batch-size", "8", "--eval-every", "800",
            "--epochs", "2", "--max-minutes", "5", "--progress-seconds", "0", "--out", str(folder / "m.joblib"), *extra]


def test_every_file_train_py_writes_still_loads(tmp_path, monkeypatch):
    corpus = write_toy_corpus(tmp_path / "toy.txt")
    variants = {
        "rnn": ["--ngram-order", "0"],
        "gru": ["--cell", "gru", "--ngram-order", "0"],
        "class": ["--softmax", "class", "--classes", "8", "--ngram-order", "0"],
        "ngram": ["--cell", "gru"],
    }
    files = []
    for name, flags in variants.items():
        (tmp_path / name).mkdir()
        assert train_cli.main(toy_args(tmp_path / name, corpus, *flags)) == 0
        files.append(tmp_path / name / "m.joblib")
    assert load_model(tmp_path / "ngram" / "m.joblib").mixture is not None

    original = Trainer.evaluate

    def interrupted(self):
        original(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "evaluate", interrupted)
    (tmp_path / "ckpt").mkdir()
    assert train_cli.main(toy_args(tmp_path / "ckpt", corpus)) == 130
    files.append(tmp_path / "ckpt" / "m.joblib.ckpt")

    for path in files:
        assert_same(read_payload(path), joblib.load(path))


def test_a_pinned_sha256_is_checked_before_the_file_is_read(tmp_path, tiny_model_path):
    genuine = Path(tiny_model_path).read_bytes()
    pin = hashlib.sha256(genuine).hexdigest()
    assert load_model(tiny_model_path, sha256=pin.upper()).model is not None
    path, marker = exploit(tmp_path, "eval")
    with pytest.raises(ModelFileError, match=rf"^{path}: refused, nothing in it was run: its SHA-256 is [0-9a-f]{{64}}, not the pinned {pin}$"):
        load_model(path, sha256=pin)
    assert not marker.exists()

    config = ServiceConfig.from_env({"RNNLM_MODEL": str(path), "RNNLM_MODEL_SHA256": pin.upper()})
    assert config.model_sha256 == pin
    with pytest.raises(ModelFileError, match="not the pinned"):
        create_app(config)
    assert ServiceConfig.from_env({}).model_sha256 is None
    with pytest.raises(ConfigError, match="RNNLM_MODEL_SHA256 must be a SHA-256 in hex"):
        ServiceConfig.from_env({"RNNLM_MODEL_SHA256": pin[:-1]})

"""SIGKILL ``training/train.py`` at a random moment, ``--resume`` it, and compare the final
parameters with an uninterrupted run of the same seed: ``python bench/kill_resume.py``.

The runs stop after ``--epochs`` (not a time budget, which a killed run would spend differently)
with an evaluation, and so a checkpoint, every ``--eval-every`` words. Prints one JSON line: when
the kill came, how many training words the checkpoint had kept, and whether every parameter is
equal bit for bit (else the largest difference).
"""
from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from models.model_file import load_model, read_payload  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TRAINING_FLAGS = ["--cell", "rnn", "--hidden", "32", "--vocab-size", "2000", "--epochs", "1", "--eval-every", "100000",
                  "--ngram-order", "0", "--max-minutes", "60", "--threads", "1", "--progress-seconds", "5"]


def train(out: Path, data_dir: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "training/train.py", *TRAINING_FLAGS, "--data-dir", data_dir, "--out", str(out), *extra],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default="data")
    p.add_argument("--seed", type=int, default=None, help="of the moment of the kill (default: random)")
    args = p.parse_args()
    chooser = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as folder:
        whole, killed = Path(folder) / "whole.joblib", Path(folder) / "killed.joblib"
        started = time.monotonic()
        reference = train(whole, args.data_dir)
        reference.communicate()
        full_seconds = time.monotonic() - started
        run = train(killed, args.data_dir)
        ckpt = Path(str(killed) + ".ckpt")
        while not ckpt.exists() and run.poll() is None:  # at least one checkpoint before the kill
            time.sleep(0.05)
        delay = chooser.uniform(0, max(0.1, 0.8 * full_seconds - (time.monotonic() - started - full_seconds)))
        time.sleep(delay)
        kill_at = time.monotonic() - started - full_seconds
        run.send_signal(signal.SIGKILL)
        run.wait()
        kept_words = read_payload(ckpt)["trainer"]["progress"]["train_words"]
        resumed = train(killed, args.data_dir, "--resume")
        resumed.communicate()
        a, b = load_model(whole).model.parameters(), load_model(killed).model.parameters()
        differences = {name: float(np.max(np.abs(a[name].astype(np.float64) - b[name]))) for name in a}
        print(json.dumps({
            "killed_after_seconds": round(kill_at, 2), "uninterrupted_seconds": round(full_seconds, 1),
            "checkpoint_train_words": kept_words, "resume_exit_code": resumed.returncode,
            "bit_for_bit_equal": all(np.array_equal(a[name], b[name]) for name in a),
            "largest_difference": max(differences.values()),
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How long reading a model file takes, joblib's own unpickler against the restricted one that
every loader now uses (models.safe_pickle), with and without a pinned SHA-256, alternated in one run: ``python bench/model_load.py``.

Prints one JSON line with the median seconds of each over ``--repeats`` reads and their ratio.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import joblib  # noqa: E402

from models.safe_pickle import safe_load  # noqa: E402


def seconds(read, path: str) -> float:
    started = time.perf_counter()
    read(path)
    return time.perf_counter() - started


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="artifacts/model.joblib", help="model file read")
    p.add_argument("--repeats", type=int, default=7, help="reads of each kind (alternated)")
    args = p.parse_args()
    pin = hashlib.sha256(Path(args.model).read_bytes()).hexdigest()  # also warms the page cache
    readers = {"joblib_load": joblib.load, "safe_load": safe_load,
               "safe_load_pinned": lambda path: safe_load(path, pin)}
    times: dict[str, list[float]] = {name: [] for name in readers}
    for _ in range(args.repeats):
        for name, read in readers.items():
            times[name].append(seconds(read, args.model))
    medians = {name: round(statistics.median(values), 4) for name, values in times.items()}
    print(json.dumps({"model": args.model, "bytes": Path(args.model).stat().st_size, "repeats": args.repeats,
                      "median_seconds": medians, "ratio": round(medians["safe_load"] / medians["joblib_load"], 3),
                      "ratio_pinned": round(medians["safe_load_pinned"] / medians["joblib_load"], 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

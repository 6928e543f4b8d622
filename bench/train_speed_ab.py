"""Training speed of this checkout against another, on a shared and noisy machine.

One persistent process per checkout (each importing its own ``models`` and ``training``) trains
the same batches of synthetic Zipf sentences; the parent asks them in turn, alternating which
goes first, so a busy moment hits both alike. Prints one JSON line: each side's training words a
second per round, their medians, and the median of the paired ratios new / old.

Run: ``flock /work/bench.lock .venv/bin/python bench/train_speed_ab.py --old /work/wt-old``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# what each child runs: build the model with the constructor every checkout has, then time
# train_batch over the batches each time the parent writes a line
CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from bench.speed_data import load_bench_data
from models.cells import cell_class
from models.output_layer import blas_limits_for
from models.word_classes import WordClasses
from training.schedule import HalvingSchedule
from training.trainer import TrainConfig, Trainer
cell, softmax, threads, vocab, hidden, sentences = sys.argv[2], sys.argv[3], *map(int, sys.argv[4:8])
data = load_bench_data("/nonexistent", vocab, sentences, 16)
classes = WordClasses.from_counts(data.counts, WordClasses.default_count(vocab)) if softmax == "class" else None
model = cell_class(cell)(vocab, hidden, bptt_truncate=None, seed=0, classes=classes)
model.threads = threads
trainer = Trainer(model, data.sentences, data.sentences[:10], TrainConfig(batch_size=16), HalvingSchedule(1.0, 6))
with blas_limits_for(threads):
    trainer.train_batch(data.batches[0])
    print("ready", flush=True)
    for _ in sys.stdin:
        start = time.perf_counter()
        for batch in data.batches:
            trainer.train_batch(batch)
        print(json.dumps(data.words / (time.perf_counter() - start)), flush=True)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True, type=Path, help="the other checkout (its own .venv is used)")
    parser.add_argument("--cell", default="gru")
    parser.add_argument("--softmax", choices=["full", "class"], default="full")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--sentences", type=int, default=1500, help="sentences trained on per round")
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    children = {}
    for side, root in (("old", args.old.resolve()), ("new", ROOT)):
        command = [str(root / ".venv" / "bin" / "python"), "-c", CHILD, str(root), args.cell, args.softmax,
                   str(args.threads), str(args.vocab), str(args.hidden), str(args.sentences)]
        child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root)
        if child.stdout.readline().strip() != "ready":
            raise SystemExit(f"the {side} checkout's child did not start")
        children[side] = child
    rates: dict[str, list[float]] = {"old": [], "new": []}
    for round_ in range(args.rounds):
        for side in ("old", "new") if round_ % 2 == 0 else ("new", "old"):
            children[side].stdin.write("go\n")
            children[side].stdin.flush()
            rates[side].append(float(children[side].stdout.readline()))
    for child in children.values():
        child.stdin.close()
        child.wait()
    result = {"old": str(args.old), "cell": args.cell, "softmax": args.softmax, "threads": args.threads,
              "vocab": args.vocab, "hidden": args.hidden, "rounds": args.rounds}
    for side, values in rates.items():
        result[f"{side}_words_per_sec"] = round(statistics.median(values))
        result[f"{side}_all"] = [round(v) for v in values]
    result["new_over_old_paired_median"] = round(statistics.median(n / o for n, o in zip(rates["new"], rates["old"])), 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

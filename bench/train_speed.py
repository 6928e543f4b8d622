"""Training and sampling speed, measured in one run on the same sentences and shapes.

Contenders: our trainer with the full softmax and with the class-based output layer (the cell is
``--cell``: the RNN by default, or the GRU); the slow reference (the cell's ``bptt``, the
tutorial's algorithm one sentence at a time, with a plain SGD step per sentence: the oracle the
tests compare against); and, for the RNN when PyTorch is importable, the same model in PyTorch (``bench/torch_speed.py``, run in a child process with its best settings).
Prints one JSON line: medians of several repeats, the ratios, the FLOP rate achieved as a share of
a float32 matrix product measured here, and peak resident memory.

Run: ``make bench`` or ``.venv/bin/python bench/train_speed.py``; with PyTorch installed in
another environment that also has this project (``pip install torch==2.13.0 -e .``), run it with
that environment's python to add the PyTorch figures.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
from threadpoolctl import threadpool_limits

from bench.speed_data import BenchData, load_bench_data
from models.build import build_model as build_from_config
from models.cells import CELLS
from models.model_config import ModelConfig
from models.cores import available_cores
from models.output_layer import blas_limits_for
from models.recurrent_lm import RecurrentLM
from models.sampling import Sampler, SamplingParams
from models.word_classes import WordClasses
from training.schedule import HalvingSchedule
from training.trainer import TrainConfig, Trainer

# glibc's malloc returns big blocks to the system and maps them again on every batch unless these
# are raised; PyTorch was about a third faster with them (the measurement)
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(2**31),
              "MALLOC_TOP_PAD_": str(64 * 2**20)}


def build_model(args, data: BenchData, softmax: str) -> RecurrentLM:
    config = ModelConfig(vocab_size=args.vocab, hidden_size=args.hidden, cell=args.cell,
                         bptt_truncate=args.bptt_truncate, softmax=softmax).fitted_to(data.counts)
    model = build_from_config(config)
    model.threads = args.threads
    return model


def trainer_rate(args, data: BenchData, softmax: str) -> float:
    """Training words per second of our batched trainer (SGD steps included)."""
    model = build_model(args, data, softmax)
    trainer = Trainer(model, data.sentences, data.sentences[:10], TrainConfig(batch_size=args.batch_size),
                      HalvingSchedule(1.0, 6))
    trainer.train_batch(data.batches[0])  # warm-up: buffers, thread pool
    start = time.perf_counter()
    for batch in data.batches:
        trainer.train_batch(batch)
    return data.words / (time.perf_counter() - start)


def reference_rate(args, data: BenchData) -> float:
    """Training words per second of the oracle: the cell's ``bptt`` and an SGD step, one sentence at a time."""
    model = build_model(args, data, "full")
    params = model.parameters()
    words = 0
    start = time.perf_counter()
    for x, y in zip(data.inputs[: args.reference_sentences], data.targets[: args.reference_sentences]):
        for name, grad in zip(model.parameter_names, model.bptt(x, y)):
            params[name] -= np.float32(0.005) * grad
        words += len(y)
    return words / (time.perf_counter() - start)


def sampling_ms_per_word(args, data: BenchData, softmax: str) -> float:
    """Milliseconds per generated word, one sentence of 2000 words (the end of sentence masked)."""
    sampler = Sampler(build_model(args, data, softmax), data.vocab)
    params = SamplingParams(max_new_tokens=2000, min_words=2000)
    start = time.perf_counter()
    sample = sampler.sample_sentence([], params, np.random.default_rng(0))
    return 1000 * (time.perf_counter() - start) / len(sample.new_ids)


def matmul_gflops(args, rows: int = 800, repeats: int = 20) -> float:
    """float32 GFLOP/s of the output layer's product (rows x H by H x C), BLAS on every core."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((rows, args.hidden), dtype=np.float32)
    b = rng.standard_normal((args.hidden, args.vocab), dtype=np.float32)
    out = np.empty((rows, args.vocab), dtype=np.float32)
    with threadpool_limits(available_cores(), user_api="blas"):
        np.matmul(a, b, out=out)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            times.append(time.perf_counter() - start)
    return 2 * rows * args.hidden * args.vocab / statistics.median(times) / 1e9


def flops_per_word(args, data: BenchData, softmax: str) -> float:
    """Matrix-product FLOPs of one training word: forward, and backward for the states and weights."""
    recurrent = 3 * 2 * args.hidden * args.hidden * len(CELLS[args.cell].RECURRENT_NAMES)  # one H x H product per W
    if softmax == "full":
        return recurrent + 3 * 2 * args.hidden * args.vocab
    classes = WordClasses.from_counts(data.counts, WordClasses.default_count(args.vocab))
    sizes = np.diff(classes.starts)[classes.word_class[data.all_targets]]
    scored = classes.n_classes + float(np.mean(np.where(sizes > 1, sizes, 0)))
    return recurrent + 3 * 2 * args.hidden * scored


def torch_figures(args) -> dict | None:
    """The PyTorch contender's figures from a child process, or None without PyTorch."""
    try:
        import torch  # noqa: F401  (only asking whether it is there)
    except ImportError:
        return None
    command = [sys.executable, str(ROOT / "bench" / "torch_speed.py"), "--repeats", str(args.repeats),
               "--batch-size", str(args.batch_size), "--hidden", str(args.hidden), "--vocab", str(args.vocab),
               "--sentences", str(args.sentences), "--threads", str(available_cores())]
    done = subprocess.run(command, env={**os.environ, **MALLOC_ENV}, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def median(values: list[float], digits: int = 1) -> float:
    return round(statistics.median(values), digits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cell", choices=list(CELLS), default="rnn", help="as training/train.py --cell")
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=available_cores(), help="as training/train.py --threads")
    parser.add_argument("--bptt-truncate", type=lambda v: None if v == "none" else int(v), default=None)
    parser.add_argument("--sentences", type=int, default=6000, help="training sentences timed per repeat")
    parser.add_argument("--reference-sentences", type=int, default=60, help="sentences the slow reference trains on")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir", default=str(ROOT / "data"))
    args = parser.parse_args()
    data = load_bench_data(args.data_dir, args.vocab, args.sentences, args.batch_size)

    rates: dict[str, list[float]] = {"full": [], "class": [], "reference": []}
    with blas_limits_for(args.threads):  # the threading of training/train.py
        for _ in range(args.repeats):  # interleaved, so a noisy moment hits every contender
            for softmax in ("full", "class"):
                rates[softmax].append(trainer_rate(args, data, softmax))
        for _ in range(min(args.repeats, 3)):
            rates["reference"].append(reference_rate(args, data))
    with threadpool_limits(1, user_api="blas"):  # the service: one BLAS thread per worker
        sampling = {s: [sampling_ms_per_word(args, data, s) for _ in range(args.repeats)] for s in ("full", "class")}
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gflops = matmul_gflops(args)
    theirs = torch_figures(args) if args.cell == "rnn" else None  # the PyTorch contender is an RNN

    full, cls, ref = (statistics.median(rates[k]) for k in ("full", "class", "reference"))
    result = {
        "data": data.name, "cell": args.cell, "vocab": args.vocab, "hidden": args.hidden, "batch_size": args.batch_size,
        "threads": args.threads, "bptt_truncate": args.bptt_truncate, "repeats": args.repeats,
        "timed_words_per_repeat": data.words,
        "train_words_per_sec": {k: median(v, 0) for k, v in rates.items()},
        "train_words_per_sec_all": {k: [round(r) for r in v] for k, v in rates.items()},
        "ours_full_over_reference": round(full / ref, 1),
        "ours_class_over_full": round(cls / full, 2),
        "sample_ms_per_word": {k: median(v, 4) for k, v in sampling.items()},
        "matmul_gflops_float32": round(gflops, 1),
        "achieved_gflops": {s: round(statistics.median(rates[s]) * flops_per_word(args, data, s) / 1e9, 1)
                            for s in ("full", "class")},
        "peak_rss_mb": round(peak_rss_mb, 1),
        "torch": theirs,
    }
    result["achieved_share_of_matmul"] = {s: round(g / gflops, 2) for s, g in result["achieved_gflops"].items()}
    if theirs is not None:
        result["ours_full_over_torch"] = round(full / theirs["train_words_per_sec"], 2)
        result["ours_class_over_torch"] = round(cls / theirs["train_words_per_sec"], 2)
        result["torch_sampling_over_ours_full"] = round(
            theirs["sample_ms_per_word"] / result["sample_ms_per_word"]["full"], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

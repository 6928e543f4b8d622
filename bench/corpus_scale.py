"""Your own corpus at scale: builds test corpora and measures the pipeline on them (issue 14).

Test corpora: Austen's five training novels written K times, a quarter of the words of each copy
replaced by words drawn from the novels' unigram distribution (so n-grams keep being new, as in a
larger real corpus). For each corpus asked for, the default training command is run twice with
``--max-minutes M`` (the first run tokenizes and caches, the second reads the cache), under
``/usr/bin/time`` for the peak memory of the whole process tree; printed per run, as one JSON line
each: the training JSON's figures, wall clock, peak RSS, the model file's size. ``--tokenize``
adds the tokenization rate of today's path (one core, ``build_dataset``) against the cache's (all
cores) on the same file; ``--serve`` loads the last model file as the service does and reports
its load time and the resident memory it adds.

    flock /work/bench.lock .venv/bin/python bench/corpus_scale.py --copies 4 13 --minutes 3 --tokenize 3
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from training.corpus import load_austen  # noqa: E402

REPLACED_SHARE = 0.25


def build_corpus(path: Path, copies: int, data_dir: Path, seed: int = 0) -> Path:
    """The training novels ``copies`` times, each copy with a quarter of its words redrawn."""
    if path.is_file():
        return path
    paragraphs = load_austen(data_dir).train
    words = [p.split() for p in paragraphs]
    lengths = np.array([len(w) for w in words])
    flat = np.array([w for ws in words for w in ws], dtype=object)
    vocabulary, counts = np.unique(flat, return_counts=True)
    rng = np.random.default_rng(seed)
    breaks = np.cumsum(lengths)[:-1]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        for _ in range(copies):
            copy = flat.copy()
            redrawn = rng.random(copy.size) < REPLACED_SHARE
            copy[redrawn] = vocabulary[rng.choice(vocabulary.size, size=int(redrawn.sum()), p=counts / counts.sum())]
            out.write("\n\n".join(" ".join(p) for p in np.split(copy, breaks)))
            out.write("\n\n")
    tmp.rename(path)
    return path


def timed_run(command: list[str]) -> dict:
    """Wall clock and peak RSS (largest process of the tree, from GNU time) of a command."""
    started = time.monotonic()
    done = subprocess.run(["/usr/bin/time", "-v", *command], cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    cpu = sum(float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", done.stderr))
    return {"wall_seconds": round(wall, 1), "peak_rss_mb": round(int(peak.group(1)) / 1024, 1) if peak else None,
            "cpu_seconds": round(cpu, 1), "stdout": done.stdout, "stderr": done.stderr}


def train_run(corpus: Path, minutes: float, out: Path, data_dir: Path) -> dict:
    run = timed_run([sys.executable, "training/train.py", "--corpus", str(corpus), "--max-minutes", str(minutes),
                     "--out", str(out), "--data-dir", str(data_dir)])
    summary = json.loads(run["stdout"].strip().splitlines()[-1])
    tokenized = re.search(r"tokenized ([\d,]+) words in ([\d.]+) s", run["stderr"])
    return {
        "corpus": corpus.name, "max_minutes": minutes, "wall_seconds": run["wall_seconds"],
        "tree_peak_rss_mb": run["peak_rss_mb"], "file_mb": round(out.stat().st_size / 1e6, 1),
        "tokenize_seconds": float(tokenized.group(2)) if tokenized else 0.0,
        **{k: summary.get(k) for k in ("train_words", "seconds_after_tokenization", "reserved_seconds", "val_perplexity",
                                      "rnn_val_perplexity", "ngram_val_perplexity", "ngram_weight", "stop_reason",
                                      "peak_rss_mb")},
    }


def tokenize_rates(corpus: Path, data_dir: Path, repeats: int = 1) -> dict:
    """Words a second: today's one-core path against the cache's (all cores) on the same file, run
    side by side ``repeats`` times (medians), and the seconds a second run takes to read the cache;
    with the CPU seconds of each (the process and its workers), which a loaded machine disturbs less."""
    code = ("import sys, time, json; from pathlib import Path; from training.corpus import load_corpus;"
            "from training.dataset import build_dataset, load_dataset;"
            "t = time.monotonic(); d = {kind}; s = time.monotonic() - t;"
            "print(json.dumps({{'words': d.train_words + d.valid_words, 'seconds': s}}))")
    old = code.format(kind=f"build_dataset(load_corpus({str(corpus)!r}), 8000)")
    runs: dict[str, list[dict]] = {"one_core": [], "cache_all_cores": [], "cache_read": []}
    for _ in range(repeats):
        scratch = Path(tempfile.mkdtemp(dir=data_dir))
        new = code.format(kind=f"load_dataset({str(corpus)!r}, None, Path({str(scratch)!r}), 8000, "
                               f"workers={os.cpu_count()})")
        for name, snippet in (("one_core", old), ("cache_all_cores", new), ("cache_read", new)):
            run = timed_run([sys.executable, "-c", snippet])
            result = json.loads(run["stdout"].strip().splitlines()[-1])
            runs[name].append({"words_per_sec": round(result["words"] / result["seconds"]),
                               "seconds": round(result["seconds"], 1), "peak_rss_mb": run["peak_rss_mb"],
                               "cpu_seconds": run["cpu_seconds"]})
            print(json.dumps({"corpus": corpus.name, name: runs[name][-1]}), flush=True)
        shutil.rmtree(scratch, ignore_errors=True)
    figures = {name: {key: float(np.median([r[key] for r in found])) for key in found[0]} for name, found in runs.items()}
    figures["ratio"] = round(figures["cache_all_cores"]["words_per_sec"] / figures["one_core"]["words_per_sec"], 2)
    figures["ratios"] = [round(n["words_per_sec"] / o["words_per_sec"], 2)
                         for o, n in zip(runs["one_core"], runs["cache_all_cores"])]
    return figures


def serve_figures(model: Path) -> dict:
    """Load time, the resident memory the loaded model holds in a fresh process (VmRSS after less
    before, as a service worker keeps it) and the n-gram table's own bytes."""
    code = ("import re, time, json; from pathlib import Path; from models.model_file import load_model;"
            "rss = lambda: int(re.search(r'VmRSS:\\s+(\\d+)', Path('/proc/self/status').read_text()).group(1)) / 1024;"
            "before = rss(); t = time.monotonic();"
            f"m = load_model({str(model)!r}); s = time.monotonic() - t;"
            "levels = m.mixture.ngram.levels if m.mixture else [];"
            "print(json.dumps({'load_seconds': round(s, 2), 'rss_held_mb': round(rss() - before, 1),"
            "'table_mb': round(sum(a.nbytes for l in levels for a in l.to_payload().values()) / 1e6, 1),"
            "'ngrams': sum(l.words.size for l in levels)}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--copies", type=int, nargs="+", default=[13], help="corpora to build: this many copies of the novels")
    p.add_argument("--minutes", type=float, default=3.0, help="--max-minutes of each training run")
    p.add_argument("--runs", type=int, default=2, help="training runs per corpus (the first tokenizes)")
    p.add_argument("--tokenize", type=int, default=0, metavar="REPEATS",
                   help="tokenization rates, today's path against the cache's, this many times side by side")
    p.add_argument("--serve", action="store_true", help="load time and memory of the last model file")
    p.add_argument("--work", default="artifacts/bench-corpora", help="folder for the corpora, caches and model files")
    p.add_argument("--data-dir", default="data", help="where the default corpus is unpacked")
    args = p.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    (work / "r-cran-janeaustenr").exists() or (work / "r-cran-janeaustenr").symlink_to(
        (Path(args.data_dir) / "r-cran-janeaustenr").resolve())
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model_name = next((line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("Model name")), "?")
    print(json.dumps({"cpu": model_name, "cores": os.cpu_count()}), flush=True)
    out = None
    for copies in args.copies:
        started = time.monotonic()
        corpus = build_corpus(work / f"austen-x{copies}.txt", copies, Path(args.data_dir))
        print(json.dumps({"corpus": corpus.name, "mb": round(corpus.stat().st_size / 1e6, 1),
                          "build_seconds": round(time.monotonic() - started, 1)}), flush=True)
        if args.tokenize:
            print(json.dumps({"corpus": corpus.name, "tokenize": tokenize_rates(corpus, work, args.tokenize)}), flush=True)
        for run in range(args.runs):
            out = work / f"model-x{copies}.joblib"
            print(json.dumps({"run": run + 1, **train_run(corpus, args.minutes, out, work)}), flush=True)
    if args.serve and out is not None:
        print(json.dumps({"model": out.name, **serve_figures(out)}), flush=True)
    print(json.dumps({"bench_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

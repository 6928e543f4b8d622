"""Does the Sampler of this checkout draw what the Sampler of another checkout draws?

Trains four small models (RNN and GRU, full and class softmax, each with a trigram mixture) with
the OTHER checkout's ``training/train.py`` (so both checkouts can read the files), then generates
the same seeded sentences of mixed parameters (temperature, top-k, top-p, greedy, repetition
penalty, top_n alternatives, with and without the n-gram mixture) with both Samplers, each in a
process of its own whose ``models`` package is that checkout's. Prints one JSON line: the share
of token-identical sentences, how many sentences and tokens were compared, and the largest
difference between the log-probabilities reported for the same tokens.

Run: ``.venv/bin/python bench/sampler_equivalence.py --old /work/wt-old`` (a worktree of the
commit to compare against, e.g. ``git worktree add /work/wt-old 8cfeee1``).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = [(cell, softmax) for cell in ("rnn", "gru") for softmax in ("full", "class")]


def train_models(old: Path, folder: Path, data_dir: str, minutes: float) -> dict[str, str]:
    """One small model file per variant, written by the old checkout's training command."""
    paths = {}
    for cell, softmax in VARIANTS:
        path = folder / f"{cell}-{softmax}.joblib"
        if not path.is_file():
            subprocess.run(
                [sys.executable, str(old / "training" / "train.py"), "--cell", cell, "--softmax", softmax,
                 "--vocab-size", "2000", "--hidden", "24", "--max-minutes", str(minutes), "--eval-every", "150000",
                 "--ngram-order", "3", "--data-dir", data_dir, "--out", str(path), "--log-level", "WARNING"],
                check=True, cwd=old, stdout=subprocess.DEVNULL)
        paths[f"{cell}-{softmax}"] = str(path)
    return paths


def sampling_cases(count: int, vocab_size: int, names: list[str]) -> list[dict]:
    """Seeded cases that together take every path of the Sampler, spread over the models ``names``."""
    import numpy as np

    rng = np.random.default_rng(2024)
    kinds = [{}, {"temperature": 0.7}, {"temperature": 1.6}, {"temperature": 1e-3}, {"top_k": 1}, {"top_k": 5},
             {"top_k": 40, "temperature": 0.9}, {"top_p": 0.3}, {"top_p": 0.9}, {"top_p": 0.95, "top_k": 50},
             {"do_sample": False}]
    cases = []
    for i in range(count):
        sampling = dict(kinds[i % len(kinds)], max_new_tokens=25, min_words=int(rng.integers(0, 6)))
        penalty = [1.0, 1.0, 1.3, 0.8][int(rng.integers(0, 4))]
        cases.append({
            "seed": i, "model": names[(i // len(kinds)) % len(names)],
            "mixture": bool(rng.integers(0, 2)), "prefix": rng.integers(3, vocab_size, size=int(rng.integers(0, 4))).tolist(),
            "sampling": sampling, "penalty": penalty, "top_n": [0, 0, 3][int(rng.integers(0, 3))],
        })
    return cases


def generate(root: str, models: dict[str, str], cases: list[dict]) -> list[dict]:
    """Run in a child whose ``models`` package is ``root``'s: each case's words, log-probabilities and alternatives."""
    sys.path.insert(0, root)
    import numpy as np
    from models.model_file import load_model
    from models.sampling import Sampler, SamplingParams

    samplers = {}
    for name, path in models.items():
        loaded = load_model(path)
        samplers[name] = (Sampler(loaded.model, loaded.vocab, loaded.mixture), Sampler(loaded.model, loaded.vocab))
    results = []
    for case in cases:
        with_mixture, alone = samplers[case["model"]]
        sampler = with_mixture if case["mixture"] else alone
        words = list(sampler.iter_sentence(case["prefix"], SamplingParams(**case["sampling"]),
                                           np.random.default_rng(case["seed"]), case["penalty"], case["top_n"]))
        results.append({"ids": [w.word_id for w in words], "logprobs": [w.logprob for w in words],
                        "alternatives": [[list(a) for a in w.alternatives] for w in words]})
    return results


def run_child(root: Path, models: dict[str, str], cases: list[dict]) -> list[dict]:
    job = json.dumps({"root": str(root), "models": models, "cases": cases})
    done = subprocess.run([sys.executable, __file__, "--child"], input=job, capture_output=True, text=True, check=True,
                          cwd=root)
    return json.loads(done.stdout)


def compare(old: list[dict], new: list[dict]) -> dict:
    identical = sum(a["ids"] == b["ids"] for a, b in zip(old, new))
    largest = 0.0
    tokens = 0
    for a, b in zip(old, new):
        for i, (x, y) in enumerate(zip(a["ids"], b["ids"])):
            if x != y:
                break
            tokens += 1
            largest = max(largest, abs(a["logprobs"][i] - b["logprobs"][i]))
            for (wa, la), (wb, lb) in zip(a["alternatives"][i], b["alternatives"][i]):
                largest = max(largest, abs(la - lb)) if wa == wb else float("inf")
    return {"sentences": len(old), "identical_sentences": identical, "identical_share": identical / len(old),
            "tokens_compared": tokens, "max_abs_logprob_difference": largest}


def main() -> None:
    if "--child" in sys.argv:
        job = json.loads(sys.stdin.read())
        print(json.dumps(generate(job["root"], job["models"], job["cases"])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True, type=Path, help="the other checkout (its training command writes the models)")
    parser.add_argument("--sentences", type=int, default=1200)
    parser.add_argument("--work", type=Path, default=None, help="keep the trained models here (default: a temporary folder)")
    parser.add_argument("--minutes", type=float, default=0.7, help="training budget of each small model")
    parser.add_argument("--data-dir", default=str(ROOT / "data"))
    parser.add_argument("--model", action="append", default=[], type=Path,
                        help="compare on this model file instead of training small ones (repeatable)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.work or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        if args.model:
            models = {path.name: str(path.resolve()) for path in args.model}
        else:
            models = train_models(args.old.resolve(), folder, str(Path(args.data_dir).resolve()), args.minutes)
        vocab_size = 2000 if not args.model else 1000  # prefixes are drawn from the first words of every vocabulary
        cases = sampling_cases(args.sentences, vocab_size, list(models))
        old = run_child(args.old.resolve(), models, cases)
        new = run_child(ROOT, models, cases)
    result = {"old": str(args.old), "new": str(ROOT), **compare(old, new),
              "by_model": {name: compare([o for o, c in zip(old, cases) if c["model"] == name],
                                         [n for n, c in zip(new, cases) if c["model"] == name]) for name in models}}
    print(json.dumps(result))


if __name__ == "__main__":
    main()

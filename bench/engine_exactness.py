"""Does the batched engine give each seeded request what the single-sequence Sampler gives it?

    .venv/bin/python bench/engine_exactness.py [--model artifacts/model.joblib] [--requests 1000]
        [--reference-tree /work/wt-old]

Draws ``--requests`` seeded sequences of mixed parameters (temperature, top-k, top-p, greedy,
repetition penalty, top-n alternatives, min_words, several sentences, with and without a
prefix), and runs them through one engine (service.engine with the batched decoder) from many
threads at once, amid as many unseeded requests of random parameters (the other traffic). Each
seeded sequence is then compared with the Sampler run alone: this tree's, and with
``--reference-tree`` that tree's own (its Python and its code, e.g. the landed main before the
engine) in a subprocess. Prints one JSON line per reference: the share of sequences equal token
for token, and the largest log-probability difference over the tokens of the equal ones.

The reference run uses only ``load_model``, ``Sampler.iter_sentence`` and ``SamplingParams``,
which both trees have (it hands ``iter_sentence`` the request's text before each sentence when
the model's mixture has a unigram cache) (``--reference-json`` is that mode, reading the specs on stdin).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

def random_specs(count: int, vocab_size: int, seed: int) -> list[dict]:
    """Mixed parameters: plain sampling, temperatures, top-k, top-p, greedy, a penalty, top-n."""
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(count):
        kind = i % 6
        specs.append({
            "prefix": [int(w) for w in rng.integers(4, vocab_size, int(rng.integers(0, 4)))],
            "max_new_tokens": int(rng.integers(1, 40)),
            "min_words": int(rng.integers(0, 3)),
            "temperature": [1.0, 0.7, 1.3, 1.0, 1.0, 0.5][kind],
            "top_k": [None, None, 20, None, 50, None][kind],
            "top_p": [None, None, None, 0.9, None, 0.8][kind],
            "do_sample": bool(rng.random() > 0.1),
            "seed": int(rng.integers(0, 2**62)),
            "repetition_penalty": [1.0, 1.0, 1.0, 1.3, 1.0, 1.0][kind],
            "top_n": [0, 0, 0, 0, 2, 0][kind],
            "num_sentences": int(rng.integers(1, 3)),
        })
    return specs


def reference_words(model_path: str, specs: list[dict]) -> list[list[tuple[int, float]]]:
    """Each spec's words from the Sampler alone (the API both trees have)."""
    from models.model_file import load_model
    from models.sampling import Sampler, SamplingParams

    loaded = load_model(model_path)
    sampler = Sampler(loaded.model, loaded.vocab, loaded.mixture)
    out = []
    for spec in specs:
        params = SamplingParams(spec["max_new_tokens"], spec["min_words"], spec["temperature"], spec["top_k"],
                                spec["top_p"], spec["do_sample"])
        rng = np.random.default_rng(spec["seed"])
        words, text = [], []
        size = getattr(loaded.mixture, "cache_size", 0)  # a tree or a file without the cache has none
        for sentence in range(spec["num_sentences"]):
            prefix = spec["prefix"] if sentence == 0 else []
            cache = {"recent": text[-size:]} if size else {}  # the request's text before this sentence
            drawn = [(w.word_id, w.logprob) for w in
                     sampler.iter_sentence(prefix, params, rng, spec["repetition_penalty"], spec["top_n"], **cache)]
            words += drawn
            text += [*prefix, *(word for word, _ in drawn)]
        out.append(words)
    return out


def engine_words(model_path: str, specs: list[dict], traffic: list[dict], max_batch: int) -> list[list[tuple[int, float]]]:
    """Each spec's words from one engine, all submitted from threads at once with the traffic."""
    from models.batch_sampling import BatchSampler, SequenceSpec
    from models.model_file import load_model
    from models.sampling import Sampler, SamplingParams
    from service.engine import Engine

    loaded = load_model(model_path)
    sampler = Sampler(loaded.model, loaded.vocab, loaded.mixture)
    engine = Engine(BatchSampler(sampler), max_batch, max_queue=len(specs) + len(traffic))

    def as_spec(spec: dict) -> SequenceSpec:
        params = SamplingParams(spec["max_new_tokens"], spec["min_words"], spec["temperature"], spec["top_k"],
                                spec["top_p"], spec["do_sample"])
        return SequenceSpec(tuple(spec["prefix"]), params, spec["seed"], spec["repetition_penalty"], spec["top_n"],
                            spec["num_sentences"])

    results: dict[int, list[tuple[int, float]]] = {}
    jobs = [(i, spec) for i, spec in enumerate(specs)] + [(-1 - i, spec) for i, spec in enumerate(traffic)]
    np.random.default_rng(1).shuffle(jobs)
    lock = threading.Lock()

    def worker(share: list) -> None:
        for index, spec in share:
            [handle] = engine.submit([as_spec(spec)], None, per_word=index % 2 == 0)
            words = [(w.word_id, w.logprob) for w in handle]
            if index >= 0:
                with lock:
                    results[index] = words
            time.sleep(0.0005 * (index % 3))  # stagger the joins

    threads = [threading.Thread(target=worker, args=(jobs[t::64],)) for t in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [results[i] for i in range(len(specs))]


def compare(engine: list, reference: list) -> dict:
    equal = [a == b or [w for w, _ in a] == [w for w, _ in b] for a, b in zip(engine, reference)]
    diffs = [abs(x[1] - y[1]) for a, b, same in zip(engine, reference, equal) if same for x, y in zip(a, b)]
    return {"sequences": len(engine), "token_identical": int(sum(equal)),
            "token_identical_rate": round(sum(equal) / len(engine), 5),
            "max_logprob_diff": float(max(diffs)) if diffs else 0.0,
            "tokens_compared": len(diffs)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="artifacts/model.joblib")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--reference-tree", help="another checkout whose own Sampler is the reference")
    parser.add_argument("--reference-json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference_json:
        json.dump(reference_words(args.model, json.load(sys.stdin)), sys.stdout)
        return 0

    from models.model_file import load_model

    vocab_size = len(load_model(args.model).vocab)
    specs = random_specs(args.requests, vocab_size, args.seed)
    traffic = random_specs(args.requests, vocab_size, args.seed + 1)
    began = time.perf_counter()
    batched = engine_words(args.model, specs, traffic, args.max_batch)
    engine_seconds = time.perf_counter() - began
    print(json.dumps({"reference": "this tree's Sampler", "engine_seconds": round(engine_seconds, 2),
                      **compare(batched, reference_words(args.model, specs))}))
    if args.reference_tree:
        tree = Path(args.reference_tree)
        done = subprocess.run(
            [str(tree / ".venv" / "bin" / "python"), str(Path(__file__).resolve()), "--reference-json",
             "--model", str(Path(args.model).resolve())],
            input=json.dumps(specs), capture_output=True, text=True, cwd=tree, check=True,
        )
        other = [[tuple(word) for word in words] for words in json.loads(done.stdout)]
        print(json.dumps({"reference": f"the Sampler of {tree}", **compare(batched, other)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

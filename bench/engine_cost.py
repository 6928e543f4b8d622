"""CPU cost of one generated word per sequence: the single-sequence Sampler against the batched
decoder kept full at several batch sizes (one BLAS thread, one process, default parameters).

    .venv/bin/python bench/engine_cost.py [--model artifacts/model.joblib] [--batches 1,4,16,32,64]
        [--words 4000] [--reference-tree /work/wt-old [--reference-model /work/wt-old/artifacts/model.joblib]]
        [--greedy]

The single-sequence figure runs one-sentence requests (seeds 0, 1, ...) one after another until
``--words`` words are drawn; each batch figure keeps that many sequences in the decoder (a new
one joins whenever one ends, as in the engine) for the same number of words. Reports process
CPU time per word, the median of ``--repeats`` runs. ``--reference-tree`` also measures that
checkout's own Sampler (its Python and code, e.g. the landed main before the engine).
``--greedy``: greedy choice instead (TGI's default without sampling parameters: the dense path
that scores every word, as top-k and top-p do), each sequence after a one-word prompt of its
own so that they do not all read the same sentence.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy is imported

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

MAX_NEW_TOKENS = 40
PROMPT_WORDS = range(10, 510)  # --greedy: sequence n's prompt is word PROMPT_WORDS[n % 500]


def request(seed: int, greedy: bool) -> tuple[list[int], dict]:
    """The prompt and sampling settings of the sequence seeded ``seed``."""
    if not greedy:
        return [], {"max_new_tokens": MAX_NEW_TOKENS}
    return [PROMPT_WORDS[seed % len(PROMPT_WORDS)]], {"max_new_tokens": MAX_NEW_TOKENS, "do_sample": False}


def single_cost(model_path: str, words: int, repeats: int, greedy: bool) -> float:
    """Microseconds of CPU per word, one sequence at a time (the API both trees have)."""
    from models.model_file import load_model
    from models.sampling import Sampler, SamplingParams

    loaded = load_model(model_path)
    sampler = Sampler(loaded.model, loaded.vocab, loaded.mixture)
    runs = []
    for _ in range(repeats):
        drawn, seed, began = 0, 0, time.process_time()
        while drawn < words:
            prompt, settings = request(seed, greedy)
            drawn += sum(1 for _ in sampler.iter_sentence(prompt, SamplingParams(**settings), np.random.default_rng(seed)))
            seed += 1
        runs.append((time.process_time() - began) / drawn * 1e6)
    return statistics.median(runs)


def batch_cost(model_path: str, batch: int, words: int, repeats: int, greedy: bool) -> float:
    """Microseconds of CPU per word per sequence with ``batch`` sequences stepped together."""
    from models.batch_sampling import BatchSampler, SequenceSpec
    from models.model_file import load_model
    from models.sampling import Sampler, SamplingParams

    loaded = load_model(model_path)
    sampler = Sampler(loaded.model, loaded.vocab, loaded.mixture)

    def spec(seed: int) -> SequenceSpec:
        prompt, settings = request(seed, greedy)
        return SequenceSpec(tuple(prompt), SamplingParams(**settings), seed)

    runs = []
    for _ in range(repeats):
        decoder = BatchSampler(sampler)  # each repeat from an empty batch
        for seed in range(batch):
            decoder.add(seed, spec(seed))
        drawn, began = 0, time.process_time()
        while drawn < words:
            for key, word in decoder.step():
                if word is None:
                    seed += 1
                    decoder.add(seed, spec(seed))
                else:
                    drawn += 1
        runs.append((time.process_time() - began) / drawn * 1e6)
    return statistics.median(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="artifacts/model.joblib")
    parser.add_argument("--batches", type=lambda v: [int(b) for b in v.split(",")], default=[1, 4, 16, 32, 64])
    parser.add_argument("--words", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-tree")
    parser.add_argument("--reference-model", help="the model --reference-tree's Sampler runs (default: --model), "
                                                  "e.g. that tree's own default model when it cannot read --model")
    parser.add_argument("--greedy", action="store_true", help="greedy choice (the dense scored path), one-word prompts")
    parser.add_argument("--single-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    single = single_cost(args.model, args.words, args.repeats, args.greedy)
    if args.single_only:
        print(json.dumps(single))
        return 0
    row = {"single_sequence_us_per_word": round(single, 1)}
    if args.reference_tree:
        tree = Path(args.reference_tree)
        done = subprocess.run([str(tree / ".venv" / "bin" / "python"), str(Path(__file__).resolve()), "--single-only",
                               "--model", str(Path(args.reference_model or args.model).resolve()), "--words", str(args.words),
                               "--repeats", str(args.repeats), *(["--greedy"] if args.greedy else [])],
                              capture_output=True, text=True, cwd=tree, check=True)
        row["reference_single_sequence_us_per_word"] = round(json.loads(done.stdout), 1)
    for batch in args.batches:
        cost = batch_cost(args.model, batch, args.words, args.repeats, args.greedy)
        row[f"batch_{batch}_us_per_word_per_sequence"] = round(cost, 1)
        row[f"batch_{batch}_over_single"] = round(cost / single, 3)
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())

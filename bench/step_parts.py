"""CPU time of the batched decoder's step by parts: this tree's BatchSampler against another
tree's (its models/batch_sampling.py loaded beside this one, on this tree's models), in
alternating chunks of one process, so that both see the same machine at the same moments.

    .venv/bin/python bench/step_parts.py --reference-tree OLD [--model artifacts/model.joblib]
        [--batches 1,2,4,8,16,32] [--chunks 21] [--steps 200] [--prefix-words 0]

Each decoder is kept full at batch B: a new sequence joins whenever one ends (one-sentence
requests of at most 40 words, default parameters; with --prefix-words N every other one starts
from an N-word prompt, which it reads before it draws). Per step, the median over the chunks of
process CPU time of the whole step, of the mixture draw (``MixtureDrawer.draw``), of the state
step (``stable_step``), of recording the drawn words (``_advance``) and of the rest (the draw's
preparation and the step's own bookkeeping); joining (``add``) is timed apart. The timers cost
about a microsecond each, alike for both decoders. The reference decoder runs on this tree's
models, so their interfaces must be the same in both trees. One BLAS thread, as in the service.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy is imported

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import models.batch_sampling as this_tree  # noqa: E402
from models.model_file import load_model  # noqa: E402
from models.sampling import Sampler, SamplingParams  # noqa: E402

MAX_NEW_TOKENS = 40
PARTS = ("step", "draw", "state_step", "advance", "rest", "add")


def reference_decoder(tree: str) -> ModuleType:
    """The other tree's models/batch_sampling.py as a module of its own."""
    spec = importlib.util.spec_from_file_location("reference_batch_sampling", Path(tree) / "models" / "batch_sampling.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it is being run
    spec.loader.exec_module(module)
    return module


class Timers:
    """Process CPU time spent in wrapped callables, by label."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    def wrap(self, owner: object, name: str, label: str) -> None:
        inner: Callable = getattr(owner, name)

        def timed(*args):
            began = time.process_time()
            try:
                return inner(*args)
            finally:
                self.spent[label] = self.spent.get(label, 0.0) + time.process_time() - began

        setattr(owner, name, timed)


def measure(sampler: Sampler, decoders: dict[str, ModuleType], batch: int, chunks: int, steps: int,
            prefix_words: int, timers: Timers) -> dict[str, dict[str, float]]:
    """Each decoder's median microseconds a step by part, their chunks alternated."""
    params = SamplingParams(max_new_tokens=MAX_NEW_TOKENS)
    running = {name: module.BatchSampler(sampler) for name, module in decoders.items()}
    seeds = dict.fromkeys(decoders, 0)
    figures: dict[str, list[dict[str, float]]] = {name: [] for name in decoders}

    def chunk(name: str) -> dict[str, float]:
        decoder, module = running[name], decoders[name]
        timers.spent = {"step": 0.0}
        for _ in range(steps):
            while len(decoder) < batch:
                prefix = tuple(range(10, 10 + prefix_words * (seeds[name] % 2)))
                decoder.add(object(), module.SequenceSpec(prefix, params, seeds[name]))
                seeds[name] += 1
            began = time.process_time()
            decoder.step()
            timers.spent["step"] += time.process_time() - began
        per_step = {label: spent / steps * 1e6 for label, spent in timers.spent.items()}
        per_step["rest"] = per_step["step"] - sum(per_step.get(p, 0.0) for p in ("draw", "state_step", "advance"))
        return per_step

    for name in decoders:  # warm-up
        chunk(name)
    for index in range(chunks):
        for name in (list(decoders) if index % 2 == 0 else list(reversed(decoders))):
            figures[name].append(chunk(name))
    return {name: {part: round(statistics.median(f.get(part, 0.0) for f in runs), 1) for part in PARTS}
            for name, runs in figures.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-tree", required=True)
    parser.add_argument("--model", default="artifacts/model.joblib")
    parser.add_argument("--batches", default="1,2,4,8,16,32")
    parser.add_argument("--chunks", type=int, default=21)
    parser.add_argument("--steps", type=int, default=200, help="steps a chunk")
    parser.add_argument("--prefix-words", type=int, default=0)
    args = parser.parse_args()
    loaded = load_model(args.model)
    sampler = Sampler(loaded.model, loaded.vocab, loaded.mixture)
    decoders = {"reference": reference_decoder(args.reference_tree), "this": this_tree}
    timers = Timers()
    timers.wrap(sampler.mixture_drawer, "draw", "draw")
    timers.wrap(sampler.model, "stable_step", "state_step")
    for module in decoders.values():
        timers.wrap(module.BatchSampler, "_advance", "advance")
        timers.wrap(module.BatchSampler, "add", "add")
    for batch in (int(b) for b in args.batches.split(",")):
        row = {"batch": batch, **measure(sampler, decoders, batch, args.chunks, args.steps, args.prefix_words, timers)}
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

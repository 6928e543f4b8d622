"""The gradient-flow report: ``python training/diagnose.py --model PATH [--fresh SPEC ...]``.

For held-out sentences, how the error of an output fades on its way back through the hidden
states (mean and spread of ||dE_t / ds_{t-k}|| for k = 0..--max-lag), the singular values of the
cell's recurrent matrix and the product of the step Jacobians' norms, and how much of each
parameter's gradient comes from further back than a truncation window. Models compared: trained
files (``--model``) and fresh ones as ``train.py`` would start them (``--fresh rnn:relu:identity``).
JSON to ``--out-json`` and as the last stdout line; a log-scale plot to ``--out-png``.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from models.activations import ACTIVATIONS  # noqa: E402
from models.build import initial_model  # noqa: E402
from models.cells import CELLS  # noqa: E402
from models.initialisation import INITS  # noqa: E402
from models.model_config import ModelConfig  # noqa: E402
from models.model_file import ModelFileError, load_model  # noqa: E402
from models.cores import available_cores  # noqa: E402
from models.recurrent_lm import RecurrentLM  # noqa: E402
from training.corpus import CorpusError  # noqa: E402
from training.dataset import load_dataset  # noqa: E402
from training.flags import positive  # noqa: E402
from training.gradient_flow import gradient_flow_report  # noqa: E402
from training.run_config import DEFAULT_VOCAB_SIZE  # noqa: E402

log = logging.getLogger("rnnlm.diagnose")
PROG = "diagnose.py"


def fresh_spec(value: str) -> tuple[str, ModelConfig]:
    """'rnn:relu:identity' -> that label and the model config train.py would start (what is left
    out: its default)."""
    parts = value.split(":")
    if (len(parts) > 3 or parts[0] not in CELLS or parts[1:2] and parts[1] not in ACTIVATIONS
            or parts[2:3] and parts[2] not in INITS):
        raise argparse.ArgumentTypeError(
            f"expected CELL[:ACTIVATION[:INIT]] from {'/'.join(CELLS)}, {'/'.join(ACTIVATIONS)}, {'/'.join(INITS)} "
            f"such as rnn:relu:identity or gru, got {value!r}")
    given = dict(zip(("cell", "activation", "init"), parts))
    config = ModelConfig(vocab_size=DEFAULT_VOCAB_SIZE, **given)
    problem = config.problem()
    if problem:
        raise argparse.ArgumentTypeError(f"{value}: {problem}")
    return value, config


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Gradient flow through time: the vanishing-gradient report.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", action="append", default=[], help="a trained model file (repeat to compare)")
    p.add_argument("--fresh", action="append", default=[], type=fresh_spec, metavar="CELL[:ACT[:INIT]]",
                   help="an untrained model as train.py starts it, e.g. rnn:tanh:uniform, rnn:relu:identity, gru")
    p.add_argument("--hidden", type=positive(int), default=ModelConfig(DEFAULT_VOCAB_SIZE).hidden_size,
                   help="hidden units of the fresh models")
    p.add_argument("--vocab-size", type=positive(int), default=DEFAULT_VOCAB_SIZE,
                   help="vocabulary of the fresh models when no --model gives one")
    p.add_argument("--sentences", type=positive(int), default=300, help="held-out sentences measured")
    p.add_argument("--max-lag", type=positive(int), default=20, help="largest k in dE_t / ds_{t-k}")
    p.add_argument("--window", type=positive(int), default=4, help="truncation window whose loss is measured")
    p.add_argument("--corpus", default="austen", help="'austen' or a .txt/.csv file")
    p.add_argument("--validation", default=None, help="held-out .txt/.csv file (default as for train.py)")
    p.add_argument("--data-dir", default="data", help="where the default corpus is unpacked")
    p.add_argument("--seed", type=int, default=0, help="initialisation of the fresh models")
    p.add_argument("--out-json", default=None, help="write the report here")
    p.add_argument("--out-png", default=None, help="write the plot here (needs matplotlib)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def models_to_compare(args: argparse.Namespace) -> tuple[list[tuple[str, RecurrentLM]], object | None]:
    """(label, model) pairs in the order given, and the vocabulary of the trained files (if any)."""
    compared, vocab = [], None
    for path in args.model:
        loaded = load_model(path)
        if vocab is not None and list(loaded.vocab.words) != list(vocab.words):
            raise ValueError(f"{path}: a different vocabulary from {args.model[0]}'s; compare models of one vocabulary")
        vocab = loaded.vocab
        compared.append((f"{Path(path).name} ({loaded.model.cell}, {loaded.model.activation}, {loaded.model.init}, trained)", loaded.model))
    return compared, vocab


def run(args: argparse.Namespace) -> dict:
    started = time.monotonic()
    compared, vocab = models_to_compare(args)
    dataset = load_dataset(args.corpus, args.validation, Path(args.data_dir), len(vocab) if vocab else args.vocab_size,
                           vocab, workers=available_cores())
    for label, config in args.fresh:
        counts = dataset.vocab.counts
        model = initial_model(replace(config, hidden_size=args.hidden).fitted_to(counts), counts, args.seed)
        compared.append((f"{label} (untrained)", model))
    sentences = dataset.valid[: args.sentences]
    reports = []
    for label, model in compared:
        log.info("measuring %s on %d held-out sentences", label, len(sentences))
        report = {"label": label, **gradient_flow_report(model, sentences, args.max_lag, args.window)}
        lags = report["lags"]
        log.info("%s: mean ||dE_t/ds_t-k|| falls %.2f orders of magnitude over %d steps; largest singular value "
                 "of %s %.3f", label, lags[-1].get("log10_fall", float("nan")), args.max_lag, report["matrix"],
                 report["largest_singular_value"])
        reports.append(report)
    summary = {"corpus": dataset.name, "max_lag": args.max_lag, "models": reports,
               "seconds": round(time.monotonic() - started, 1)}
    if args.out_json:
        Path(args.out_json).write_text(json.dumps(summary, indent=1))
    if args.out_png:
        from training.gradient_flow_plot import plot_lag_profiles

        plot_lag_profiles(reports, args.out_png)
        log.info("plot written to %s", args.out_png)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.model and not args.fresh:
        parser.error("give at least one --model or --fresh")
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        with np.errstate(over="ignore"):
            summary = run(args)
    except (ModelFileError, CorpusError, ValueError, ImportError, OSError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

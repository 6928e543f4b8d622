"""Train the recurrent language model (an RNN or a GRU): ``python training/train.py --help``.

Prints progress to stderr while it runs and, at the end, one JSON line on stdout with the
figures of the run. A checkpoint (``OUT.ckpt``) is written at every evaluation; after a crash or
a kill, ``--resume`` continues from it with the original run's settings.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from models.activations import ACTIVATIONS
from models.cells import CELLS, TRAINING_DEFAULT_CELL, cell_class
from models.initialisation import INITS, start_recurrent
from models.model_file import ModelFileError, atomic_dump, model_from_payload, model_payload, read_payload
from models.output_layer import available_cores, blas_limits_for
from models.recurrent_lm import RecurrentLM
from models.word_classes import WordClasses
from training.corpus import CorpusError
from training.dataset import development_split, load_dataset
from training.interpolation import RESERVE_SECONDS, interpolate
from training.ngram_fit import parse_thresholds
from training.output_space import estimated_file_bytes, space_problem
from training.schedule import HalvingSchedule
from training.trainer import Progress, TrainConfig, Trainer

log = logging.getLogger("rnnlm.train")

DEFAULTS = {
    "corpus": "austen",
    "cell": TRAINING_DEFAULT_CELL,
    "vocab_size": 8000,
    "hidden": 100,
    "bptt_truncate": None,
    "learning_rate": 4.0,
    "clip": 0.25,
    "batch_size": 16,
    "epochs": 30,
    "max_minutes": 9.5,
    "eval_every": 500_000,
    "max_halvings": 6,
    "min_improvement": 0.0,
    "input_init": 1.0,
    "activation": "tanh",
    "init": "uniform",
    "softmax": "full",
    "ngram_order": 5,
    "ngram_weight": None,
    "ngram_prune": "0,0,0,1",
    "dropout": 0.0,
    "classes": None,
    # the default corpus's longest sentence is 297 words (Persuasion's 215), so it is never cut
    "max_sentence_words": 400,
    "seed": 0,
    "out": "artifacts/model.joblib",
}


def truncation(value: str) -> int | None:
    if value.lower() in ("none", "full"):
        return None
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be >= 0, or 'none' for full BPTT")
    return number


def positive(kind: type):
    def parse(value: str):
        number = kind(value)
        if not number > 0 or (kind is float and not math.isfinite(number)):
            raise argparse.ArgumentTypeError(f"must be a positive {kind.__name__}")
        return number

    return parse


def probability_below_one(value: str) -> float:
    number = float(value)
    if not 0.0 <= number < 1.0:
        raise argparse.ArgumentTypeError("must be at least 0 and below 1")
    return number


def share(value: str) -> float:
    number = float(value)
    if not 0.0 < number <= 1.0:
        raise argparse.ArgumentTypeError("must be above 0 and at most 1")
    return number


def ngram_prune_flag(value: str) -> tuple[int, ...]:
    try:
        return parse_thresholds(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def ngram_order_flag(value: str) -> int:
    number = int(value)
    if not 0 <= number <= 6:
        raise argparse.ArgumentTypeError("must be 0 (no n-gram model) to 6")
    return number


def build_parser() -> argparse.ArgumentParser:
    d = DEFAULTS
    p = argparse.ArgumentParser(description="Train the NumPy recurrent language model (Elman RNN or GRU).", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--corpus", default=d["corpus"], help="'austen' (Debian's r-cran-janeaustenr) or a .txt/.csv file")
    p.add_argument("--validation", default=None, help="held-out .txt/.csv file; default: Persuasion for austen, else the last 10%% of sentences")
    p.add_argument("--max-sentence-words", type=positive(int), default=d["max_sentence_words"],
                   help="a longer sentence is cut into pieces of at most this many words (tokens)")
    p.add_argument("--vocab-size", type=positive(int), default=d["vocab_size"], help="words kept, the three special tokens included")
    p.add_argument("--cell", choices=list(CELLS), default=d["cell"],
                   help="the recurrence: the Elman RNN or a GRU (update and reset gates)")
    p.add_argument("--hidden", type=positive(int), default=d["hidden"], help="hidden units")
    p.add_argument("--activation", choices=list(ACTIVATIONS), default=d["activation"],
                   help="the RNN's nonlinearity (the GRU's is fixed): tanh, or relu (with --init identity: the IRNN)")
    p.add_argument("--init", choices=list(INITS), default=d["init"],
                   help="start of the recurrent matrices: the tutorial's uniform +-1/sqrt(H), a random orthogonal "
                        "matrix, or the identity (RNN only)")
    p.add_argument("--bptt-truncate", type=truncation, default=d["bptt_truncate"],
                   help="steps an output's error flows back beyond its own (k: steps t..t-k); 'none' = full BPTT")
    p.add_argument("--learning-rate", type=positive(float), default=d["learning_rate"], help="SGD rate for the batch-mean loss")
    p.add_argument("--clip", type=float, default=d["clip"], help="global gradient-norm limit; 0 disables")
    p.add_argument("--batch-size", type=positive(int), default=d["batch_size"], help="sentences per minibatch")
    p.add_argument("--epochs", type=positive(int), default=d["epochs"], help="passes over the training sentences at most")
    p.add_argument("--max-minutes", type=positive(float), default=d["max_minutes"], help="wall-clock budget of the whole run")
    p.add_argument("--eval-every", type=positive(int), default=d["eval_every"], help="training words between evaluations")
    p.add_argument("--max-halvings", type=int, default=d["max_halvings"], help="stop once the rate has been halved more often than this")
    p.add_argument("--min-improvement", type=probability_below_one, default=d["min_improvement"],
                   help="also halve the rate when the validation loss improved by less than this fraction")
    p.add_argument("--softmax", choices=["full", "class"], default=d["softmax"],
                   help="output layer: a softmax over all words, or class-based (class, then word within it)")
    p.add_argument("--classes", type=positive(int), default=d["classes"],
                   help="word classes of --softmax class, the 3 special tokens' included (default: about sqrt(vocab size))")
    p.add_argument("--dropout", type=probability_below_one, default=d["dropout"],
                   help="share of hidden units dropped on their way to the output layer while training (0 = none)")
    p.add_argument("--ngram-order", type=ngram_order_flag, default=d["ngram_order"],
                   help="interpolate the RNN with a Kneser-Ney n-gram model of this order, fitted after training "
                        "on the same sentences; 0 = the RNN alone")
    p.add_argument("--ngram-weight", type=share, default=d["ngram_weight"],
                   help="the RNN's share of the interpolated probability (the n-gram model has the rest); "
                        "default: chosen on a development split of the training text")
    p.add_argument("--ngram-prune", type=ngram_prune_flag, default=d["ngram_prune"],
                   help="count cut-offs per order from the unigrams up (the last for every higher order), as "
                        "lmplz --prune: n-grams seen at most that often are dropped; 0 = keep all")
    p.add_argument("--bias", action=argparse.BooleanOptionalAction, default=True, help="hidden and output biases")
    p.add_argument("--unigram-bias", action=argparse.BooleanOptionalAction, default=True,
                   help="start the output bias at the log unigram frequencies (with --bias)")
    p.add_argument("--input-init", type=float, default=DEFAULTS["input_init"],
                   help="the input matrices (the RNN's U; the GRU's Uz, Ur, Uh) start uniform in +-this (a one-hot "
                        "input has one active connection, so the tutorial's +-1/sqrt(C) hides the input at first); "
                        "0 keeps the tutorial's range")
    p.add_argument("--threads", type=positive(int), default=available_cores(),
                   help="threads for the output layer (BLAS then runs one thread each)")
    p.add_argument("--seed", type=int, default=d["seed"], help="initialisation and batch order")
    p.add_argument("--out", default=d["out"], help="model file to write (checkpoint: OUT.ckpt)")
    p.add_argument("--resume", action="store_true", help="continue from OUT.ckpt with the settings it was started with")
    p.add_argument("--data-dir", default="data", help="where the default corpus is unpacked")
    p.add_argument("--token-weighting", action=argparse.BooleanOptionalAction, default=True,
                   help="divide a batch's loss by the average tokens per batch (else by its own count)")
    p.add_argument("--progress-seconds", type=float, default=10.0, help="seconds between progress lines")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def unigram_log_frequencies(counts: list[int]) -> np.ndarray:
    """Log relative frequencies (add-one smoothed): an untrained model then predicts the unigram."""
    smoothed = np.asarray(counts, dtype=np.float64) + 1.0
    return np.log(smoothed / smoothed.sum())


def unigram_biases(model: RecurrentLM, counts: list[int]) -> None:
    """Output biases at which the untrained model predicts the unigram distribution.

    Full softmax: c = log P(w). Class layer: c_class = log P(class), c = log P(w | class).
    """
    log_p = unigram_log_frequencies(counts)
    if model.classes is None:
        model.c[:] = log_p
        return
    class_mass = np.log(np.add.reduceat(np.exp(log_p), model.classes.starts[:-1]))
    model.c_class[:] = class_mass
    model.c[:] = log_p - class_mass[model.classes.word_class]


def initial_model(args: argparse.Namespace, counts: list[int]) -> RecurrentLM:
    """The tutorial's model (RNN or GRU), then the measured starting-point changes that the flags ask for."""
    classes = None
    if args.softmax == "class":
        classes = WordClasses.from_counts(counts, args.classes or WordClasses.default_count(len(counts)))
    model = cell_class(args.cell)(len(counts), args.hidden, bptt_truncate=args.bptt_truncate, seed=args.seed,
                                  bias=args.bias, classes=classes, activation=getattr(args, "activation", "tanh"))
    start_recurrent(model, getattr(args, "init", "uniform"), np.random.default_rng([args.seed, 2]))
    if args.input_init > 0:
        rng = np.random.default_rng([args.seed, 1])
        for name in model.input_matrix_names:
            matrix = getattr(model, name)
            matrix[:] = rng.uniform(-args.input_init, args.input_init, matrix.shape)
    if args.bias and args.unigram_bias:
        unigram_biases(model, counts)
    return model


def ngram_order(args: argparse.Namespace) -> int:
    """The n-gram order asked for (a checkpoint from before the flag existed: none)."""
    return getattr(args, "ngram_order", 0)


def checkpoint_path(out: Path) -> Path:
    return out.with_name(out.name + ".ckpt")


def check_writable(out: Path) -> None:
    """Fail before any training if the output folder cannot take the file."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = out.with_name(f".{out.name}.probe")
        probe.write_bytes(b"\0" * 1024 * 1024)  # 1 MiB: a full disk fails here, not after training
        probe.unlink()
    except OSError as exc:
        raise SystemExit(f"train.py: cannot write the model to {out}: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> dict:
    started = time.monotonic()
    out = Path(args.out)
    check_writable(out)
    ckpt = checkpoint_path(out)
    resumed = None
    if args.resume:
        if not ckpt.is_file():
            raise SystemExit(f"train.py: --resume: no checkpoint at {ckpt}")
        payload = read_payload(ckpt)
        resumed = payload["trainer"]
        saved = dict(resumed["args"], out=args.out, resume=True, data_dir=args.data_dir, log_level=args.log_level,
                     progress_seconds=args.progress_seconds)
        args = argparse.Namespace(**saved)
        log.info("resuming from %s at %s training words", ckpt, f"{resumed['progress']['train_words']:,}")

    if resumed is not None:
        loaded = model_from_payload(payload, ckpt)
        # a checkpoint from before --max-sentence-words cut nothing
        dataset = load_dataset(args.corpus, args.validation, Path(args.data_dir), args.vocab_size, loaded.vocab,
                               getattr(args, "max_sentence_words", None), available_cores())
        model = loaded.model
        schedule = HalvingSchedule(**resumed["schedule"])
        progress = Progress.from_dict(resumed["progress"])
    else:
        dataset = load_dataset(args.corpus, args.validation, Path(args.data_dir), args.vocab_size,
                               max_sentence_words=args.max_sentence_words, workers=available_cores())
        model = initial_model(args, dataset.vocab.counts)
        schedule = HalvingSchedule(args.learning_rate, args.max_halvings, min_improvement=args.min_improvement)
        progress = Progress()
    development = None
    if ngram_order(args) and getattr(args, "ngram_weight", None) is None:
        dataset.train, development = development_split(dataset.train)
        log.info("%d sentences of the training text held out to choose the n-gram weight on", len(development))
    problem = space_problem(out.parent, estimated_file_bytes(model.cell, model.vocab_size, model.hidden_size,
                                                             ngram_order(args), dataset.train_words))
    if problem:
        raise SystemExit(f"train.py: {problem}")
    model.threads = args.threads
    config = TrainConfig(args.batch_size, args.epochs, args.eval_every, args.clip or None, args.seed, args.progress_seconds,
                         args.token_weighting, getattr(args, "dropout", 0.0))
    budget = args.max_minutes * 60 - progress.seconds
    log.info(
        "training %s: %s words per epoch, %s cell, hidden %d, vocabulary %d, budget %s",
        dataset.name, f"{dataset.train_words:,}", model.cell.upper(), model.hidden_size, model.vocab_size, f"{budget / 60:.1f} min",
    )

    def info(trainer: Trainer) -> dict:
        p = trainer.progress
        return {
            "corpus": dataset.name,
            "train_words": p.train_words,
            "seconds": round(p.seconds, 2),
            "words_per_sec": round(p.train_words / p.train_seconds, 1) if p.train_seconds else 0.0,
            "val_loss": p.val_loss if math.isfinite(p.val_loss) else None,
            "val_perplexity": math.exp(p.val_loss) if math.isfinite(p.val_loss) else None,
            "val_tokens": dataset.valid_words,
            "lr_halvings": trainer.schedule.halvings,
            "learning_rate": trainer.schedule.learning_rate,
            "stop_reason": p.stop_reason,
            "history": p.history,
            "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "args": {k: v for k, v in vars(args).items() if k not in ("resume", "data_dir", "log_level")},
        }

    def save_checkpoint(trainer: Trainer) -> None:
        payload = model_payload(trainer.model, dataset.vocab, info(trainer))
        payload["trainer"] = {
            "args": {k: v for k, v in vars(args).items()},
            "progress": trainer.progress.to_dict(),
            "schedule": trainer.schedule.state(),
        }
        atomic_dump(payload, ckpt)

    trainer = Trainer(
        model, dataset.train, dataset.valid, config, schedule, progress,
        deadline=started + budget - (RESERVE_SECONDS if ngram_order(args) else 0.0), on_checkpoint=save_checkpoint,
    )
    if resumed is not None:
        trainer.adopt_best(model.parameters())
    with blas_limits_for(args.threads):
        trainer.run()
    final = info(trainer)
    mixture = None
    if ngram_order(args):
        result = interpolate(model, dataset.train, dataset.valid, ngram_order(args), args.ngram_weight,
                             getattr(args, "ngram_prune", (0,)), development)
        mixture = result.mixture
        final.update(result.figures(), val_loss=result.val_loss, val_perplexity=math.exp(result.val_loss),
                     seconds=round(final["seconds"] + result.seconds, 2))
    atomic_dump(model_payload(model, dataset.vocab, final, mixture), out)
    ckpt.unlink(missing_ok=True)
    summary = {k: final[k] for k in ("train_words", "seconds", "words_per_sec", "val_loss", "val_perplexity",
                                      "val_tokens", "lr_halvings", "stop_reason")}
    summary.update({k: final[k] for k in ("rnn_val_perplexity", "ngram_val_perplexity", "ngram_order",
                                           "ngram_weight", "ngram_prune", "ngram_weight_choice") if k in final})
    summary["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    summary["out"] = str(out)
    return summary


def rnn_only_problem(cell: str, activation: str, init: str) -> str | None:
    """Why this combination cannot be built, or None: ReLU and the identity start are the RNN's;
    the GRU's nonlinearities are its gates' and an identity gate matrix means nothing."""
    if cell != "rnn" and (activation != "tanh" or init == "identity"):
        return (f"--activation {activation} and --init {init} are for --cell rnn; the GRU's "
                "nonlinearities are fixed and its gates take no identity start")
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = rnn_only_problem(args.cell, args.activation, args.init)
    if problem:
        parser.error(problem)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        summary = run(args)
    except (CorpusError, ModelFileError) as exc:
        print(f"train.py: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("train.py: interrupted; continue with --resume from the last checkpoint", file=sys.stderr)
        return 130
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Train the recurrent language model (an RNN, a GRU or an LSTM): ``python training/train.py --help``.

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
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.activations import ACTIVATIONS
from models.build import StartOptions
from models.cells import CELLS
from models.initialisation import INITS
from models.model_config import SOFTMAXES, ModelConfig
from models.model_file import ModelFileError, atomic_dump, model_from_payload, model_payload, read_payload
from models.cores import available_cores
from models.output_layer import blas_limits_for
from models.recurrent_lm import RecurrentLM
from training.corpus import CorpusError
from training.dataset import Dataset, development_contexts, development_split, load_dataset
from training.flags import ngram_order_flag, ngram_prune_flag, positive, probability_below_one, share, truncation
from training.budget import reserve_seconds
from training.interpolation import CACHE_SIZES, interpolate
from training.ngram_fit import KEEP_ALL_UP_TO_TOKENS, LARGE_CORPUS_CUT_OFFS
from training.output_space import estimated_file_bytes, space_problem
from training.run_config import RunConfig
from training.schedule import HalvingSchedule
from training.trainer import Progress, TrainConfig, Trainer

log = logging.getLogger("rnnlm.train")


def build_parser() -> argparse.ArgumentParser:
    """The flags; every default is the one of RunConfig, ModelConfig, TrainConfig or StartOptions."""
    run = RunConfig(threads=available_cores())
    model, train, start = run.model, run.train, run.start
    p = argparse.ArgumentParser(description="Train the NumPy recurrent language model (Elman RNN, GRU or LSTM).", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--corpus", default=run.corpus, help="'austen' (Debian's r-cran-janeaustenr) or a .txt/.csv file")
    p.add_argument("--validation", default=run.validation, help="held-out .txt/.csv file; default: Persuasion for austen, else the last 10%% of sentences")
    p.add_argument("--max-sentence-words", type=positive(int), default=run.max_sentence_words,
                   help="a longer sentence is cut into pieces of at most this many words (tokens)")
    p.add_argument("--vocab-size", type=positive(int), default=model.vocab_size, help="words kept, the three special tokens included")
    p.add_argument("--cell", choices=list(CELLS), default=model.cell,
                   help="the recurrence: the Elman RNN, a GRU (update and reset gates) or an LSTM (input, forget and output gates, a memory)")
    p.add_argument("--hidden", type=positive(int), default=model.hidden_size, help="hidden units")
    p.add_argument("--activation", choices=list(ACTIVATIONS), default=model.activation,
                   help="the RNN's nonlinearity (the gated cells' is fixed): tanh, or relu (with --init identity: the IRNN)")
    p.add_argument("--init", choices=list(INITS), default=model.init,
                   help="start of the recurrent matrices: the tutorial's uniform +-1/sqrt(H), a random orthogonal "
                        "matrix, or the identity (RNN only)")
    p.add_argument("--bptt-truncate", type=truncation, default=model.bptt_truncate,
                   help="steps an output's error flows back beyond its own (k: steps t..t-k); 'none' = full BPTT")
    p.add_argument("--learning-rate", type=positive(float), default=run.learning_rate, help="SGD rate for the batch-mean loss")
    p.add_argument("--clip", type=float, default=train.clip, help="global gradient-norm limit; 0 disables")
    p.add_argument("--batch-size", type=positive(int), default=train.batch_size, help="sentences per minibatch")
    p.add_argument("--epochs", type=positive(int), default=train.epochs, help="passes over the training sentences at most")
    p.add_argument("--max-minutes", type=positive(float), default=run.max_minutes,
                   help="wall-clock budget from the end of tokenization (cached) to the saved file; the time the "
                        "n-gram fit, the last evaluation and saving will take is kept back from training")
    p.add_argument("--eval-every", type=positive(int), default=train.eval_every, help="training words between evaluations")
    p.add_argument("--max-halvings", type=int, default=run.max_halvings, help="stop once the rate has been halved more often than this")
    p.add_argument("--min-improvement", type=probability_below_one, default=run.min_improvement,
                   help="also halve the rate when the validation loss improved by less than this fraction")
    p.add_argument("--softmax", choices=list(SOFTMAXES), default=model.softmax,
                   help="output layer: a softmax over all words, or class-based (class, then word within it)")
    p.add_argument("--classes", type=positive(int), default=run.classes,
                   help="word classes of --softmax class, the 3 special tokens' included (default: about sqrt(vocab size))")
    p.add_argument("--dropout", type=probability_below_one, default=train.dropout,
                   help="share of hidden units dropped on their way to the output layer while training (0 = none)")
    p.add_argument("--ngram-order", type=ngram_order_flag, default=run.ngram_order,
                   help="interpolate the RNN with a Kneser-Ney n-gram model of this order, fitted after training "
                        "on the same sentences; 0 = the RNN alone")
    p.add_argument("--ngram-weight", type=share, default=run.ngram_weight,
                   help="the RNN's share of the interpolated probability (the n-gram model has the rest); "
                        "default: chosen on a development split of the training text")
    p.add_argument("--ngram-prune", type=ngram_prune_flag,
                   default="auto" if run.ngram_prune is None else ",".join(map(str, run.ngram_prune)),
                   help="count cut-offs per order from the unigrams up (the last for every higher order), as "
                        "lmplz --prune: n-grams seen at most that often are dropped; 0 = keep all; auto = keep "
                        f"all up to {KEEP_ALL_UP_TO_TOKENS:,} training tokens, else "
                        f"{','.join(map(str, LARGE_CORPUS_CUT_OFFS))}")
    p.add_argument("--bias", action=argparse.BooleanOptionalAction, default=model.bias, help="hidden and output biases")
    p.add_argument("--unigram-bias", action=argparse.BooleanOptionalAction, default=start.unigram_bias,
                   help="start the output bias at the log unigram frequencies (with --bias)")
    p.add_argument("--input-init", type=float, default=start.input_init,
                   help="the input matrices (the RNN's U; the GRU's Uz, Ur, Uh; the LSTM's Ui, Uf, Uo, Ug) start uniform in +-this (a one-hot "
                        "input has one active connection, so the tutorial's +-1/sqrt(C) hides the input at first); "
                        "0 keeps the tutorial's range")
    p.add_argument("--threads", type=positive(int), default=run.threads,
                   help="threads for the output layer (BLAS then runs one thread each)")
    p.add_argument("--seed", type=int, default=train.seed, help="initialisation and batch order")
    p.add_argument("--out", default="artifacts/model.joblib", help="model file to write (checkpoint: OUT.ckpt)")
    p.add_argument("--resume", action="store_true", help="continue from OUT.ckpt with the settings it was started with")
    p.add_argument("--data-dir", default="data", help="where the default corpus is unpacked")
    p.add_argument("--token-weighting", action=argparse.BooleanOptionalAction, default=train.token_weighting,
                   help="divide a batch's loss by the average tokens per batch (else by its own count)")
    p.add_argument("--progress-seconds", type=float, default=train.progress_seconds, help="seconds between progress lines")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def run_config(args: argparse.Namespace) -> RunConfig:
    """The run the flags ask for."""
    model = ModelConfig(vocab_size=args.vocab_size, hidden_size=args.hidden, cell=args.cell, activation=args.activation,
                        init=args.init, bptt_truncate=args.bptt_truncate, bias=args.bias, softmax=args.softmax)
    train = TrainConfig(batch_size=args.batch_size, epochs=args.epochs, eval_every=args.eval_every,
                        clip=args.clip or None, seed=args.seed, progress_seconds=args.progress_seconds,
                        token_weighting=args.token_weighting, dropout=args.dropout)
    return RunConfig(corpus=args.corpus, validation=args.validation, max_sentence_words=args.max_sentence_words,
                     model=model, classes=args.classes,
                     start=StartOptions(input_init=args.input_init, unigram_bias=args.unigram_bias), train=train,
                     learning_rate=args.learning_rate, max_halvings=args.max_halvings,
                     min_improvement=args.min_improvement, max_minutes=args.max_minutes,
                     ngram_order=args.ngram_order, ngram_weight=args.ngram_weight, ngram_prune=args.ngram_prune,
                     threads=args.threads)


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


def resumed_run(ckpt: Path, progress_seconds: float) -> tuple[dict, RunConfig]:
    """The checkpoint's payload and the run it was started as (its progress lines at the pace asked now)."""
    if not ckpt.is_file():
        raise SystemExit(f"train.py: --resume: no checkpoint at {ckpt}")
    payload = read_payload(ckpt)
    if "run" not in payload.get("trainer", {}):
        raise SystemExit(f"train.py: --resume: {ckpt} was written by an older train.py; start the run again")
    config = RunConfig.from_dict(payload["trainer"]["run"])
    return payload, replace(config, train=replace(config.train, progress_seconds=progress_seconds))


def starting_point(
    config: RunConfig, data_dir: Path, checkpoint: dict | None, ckpt: Path
) -> tuple[Dataset, RecurrentLM, HalvingSchedule, Progress]:
    """The dataset (through the token cache), and the model, schedule and progress to train from:
    the checkpoint's, or new."""
    if checkpoint is not None:
        loaded = model_from_payload(checkpoint, ckpt)
        dataset = load_dataset(config.corpus, config.validation, data_dir, config.model.vocab_size, loaded.vocab,
                               config.max_sentence_words, available_cores())
        trainer_state = checkpoint["trainer"]
        return (dataset, loaded.model, HalvingSchedule(**trainer_state["schedule"]),
                Progress.from_dict(trainer_state["progress"]))
    dataset = load_dataset(config.corpus, config.validation, data_dir, config.model.vocab_size,
                           max_sentence_words=config.max_sentence_words, workers=available_cores())
    schedule = HalvingSchedule(config.learning_rate, config.max_halvings, min_improvement=config.min_improvement)
    return dataset, config.initial_model(dataset.vocab.counts), schedule, Progress()


def run_info(trainer: Trainer, dataset: Dataset, config: RunConfig) -> dict:
    """What the model file's ``info`` records about the run so far."""
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
        "run": config.to_dict(),
    }


def run(config: RunConfig, out: Path, data_dir: Path, resume: bool = False) -> dict:
    check_writable(out)
    ckpt = checkpoint_path(out)
    checkpoint = None
    if resume:
        checkpoint, config = resumed_run(ckpt, config.train.progress_seconds)
        log.info("resuming from %s at %s training words", ckpt, f"{checkpoint['trainer']['progress']['train_words']:,}")
    dataset, model, schedule, progress = starting_point(config, data_dir, checkpoint, ckpt)
    started = time.monotonic()  # the budget counts from here: tokenization is cached and shown apart
    development = development_before = None
    if config.ngram_order and config.ngram_weight is None:
        development_before = development_contexts(dataset.train, max(CACHE_SIZES))
        dataset.train, development = development_split(dataset.train)
        log.info("%d sentences of the training text held out to choose the n-gram weight on", len(development))
    problem = space_problem(out.parent, estimated_file_bytes(model.parameter_count, model.vocab_size,
                                                             config.ngram_order, dataset.train_words))
    if problem:
        raise SystemExit(f"train.py: {problem}")
    model.threads = config.threads
    budget = config.max_minutes * 60 - progress.seconds
    reserve = reserve_seconds(dataset.train_words, dataset.valid_words,
                              development.predicted_tokens if development else 0, config.ngram_order)
    log.info(
        "training %s: %s words per epoch, %s cell, hidden %d, vocabulary %d, budget %s after tokenization",
        dataset.name, f"{dataset.train_words:,}", model.cell.upper(), model.hidden_size, model.vocab_size, f"{budget / 60:.1f} min",
    )
    log.info("%.0f s of the budget kept for the last evaluation%s and saving (estimated from %s training tokens)",
             reserve, ", the n-gram fit, choosing its weight" if config.ngram_order else "", f"{dataset.train_words:,}")

    def save_checkpoint(trainer: Trainer) -> None:
        payload = model_payload(trainer.model, dataset.vocab, run_info(trainer, dataset, config))
        payload["trainer"] = {
            "run": config.to_dict(),
            "progress": trainer.progress.to_dict(),
            "schedule": trainer.schedule.state(),
        }
        atomic_dump(payload, ckpt)

    trainer = Trainer(
        model, dataset.train, dataset.valid, config.train, schedule, progress,
        deadline=started + budget - reserve, on_checkpoint=save_checkpoint,
    )
    if checkpoint is not None:
        trainer.adopt_best(model.parameters())
    with blas_limits_for(config.threads):
        trainer.run()
    final = run_info(trainer, dataset, config)
    mixture = None
    if config.ngram_order:
        result = interpolate(model, dataset.train, dataset.valid, config.ngram_order, config.ngram_weight,
                             config.ngram_prune, development, development_before)
        mixture = result.mixture
        final.update(result.figures(), val_loss=result.val_loss, val_perplexity=math.exp(result.val_loss),
                     seconds=round(final["seconds"] + result.seconds, 2))
    atomic_dump(model_payload(model, dataset.vocab, final, mixture), out)
    ckpt.unlink(missing_ok=True)
    summary = {k: final[k] for k in ("train_words", "seconds", "words_per_sec", "val_loss", "val_perplexity",
                                      "val_tokens", "lr_halvings", "stop_reason")}
    summary.update({k: final[k] for k in ("rnn_val_perplexity", "ngram_val_perplexity", "ngram_order",
                                           "ngram_weight", "ngram_prune", "ngram_weight_choice", "cache_weight", "cache_size") if k in final})
    summary["reserved_seconds"] = round(reserve, 1)
    summary["seconds_after_tokenization"] = round(time.monotonic() - started, 1)
    summary["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    summary["out"] = str(out)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    config = run_config(args)
    problem = config.model.problem()
    if problem:
        parser.error(problem)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        summary = run(config, Path(args.out), Path(args.data_dir), args.resume)
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

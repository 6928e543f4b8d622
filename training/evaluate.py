"""Measure a trained model: ``python training/evaluate.py --model PATH [--ngram 3,5]``.

The model's perplexity on the validation text of its corpus (the split training uses) or on any
plain-text file, tokenized as training does; with ``--ngram``, the same for interpolated modified
Kneser-Ney n-gram models of those orders (and the unigram) trained on the corpus's training
sentences with the model's vocabulary, so the RNN has a yardstick on the very same tokens.
Progress goes to stderr; the last line on stdout is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from models.model_file import LoadedModel, ModelFileError, load_model
from models.cores import available_cores
from models.output_layer import blas_limits_for
from models.scoring import perplexity_from, score_sentences
from models.vocabulary import Vocabulary
from training.corpus import CorpusError, read_paragraphs
from training.dataset import load_dataset, sentences_of
from training.flags import positive
from training.ngram_counts import flat_tokens
from training.ngram_fit import fit_tokens

log = logging.getLogger("rnnlm.evaluate")

PROG = "evaluate.py"


class EvaluationError(Exception):
    """Something the user gave cannot be evaluated; the message says what."""


def ngram_orders(value: str) -> list[int]:
    """'3,5' -> [3, 5]: the n-gram orders to compare against."""
    try:
        orders = sorted({int(part) for part in value.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected orders such as 3,5, got {value!r}") from None
    if not orders or orders[0] < 1:
        raise argparse.ArgumentTypeError(f"orders must be whole numbers >= 1, got {value!r}")
    return orders


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Perplexity of a trained model, and of n-gram baselines.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True, help="model file written by train.py")
    p.add_argument("--corpus", default="austen", help="'austen' or the .txt/.csv file the model was trained on")
    p.add_argument("--validation", default=None,
                   help="held-out .txt/.csv file; default: Persuasion for austen, else the last 10%% of sentences")
    p.add_argument("--text", default=None, help="score this .txt file instead of the validation text")
    p.add_argument("--ngram", type=ngram_orders, default=None,
                   help="Kneser-Ney orders to compare, e.g. 3,5 (the unigram is always added)")
    p.add_argument("--threads", type=positive(int), default=available_cores(), help="threads for the RNN's output layer")
    p.add_argument("--data-dir", default="data", help="where the default corpus is unpacked")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def encoded_text(path: str, vocab: Vocabulary) -> list[list[int]]:
    """The sentences of a file, tokenized and encoded as training does."""
    sentences = sentences_of(read_paragraphs(Path(path)))
    if not sentences:
        raise EvaluationError(f"{path}: no sentences to score")
    return [vocab.encode_sentence(words) for words in sentences]


def rnn_figures(loaded: LoadedModel, sentences: list[list[int]], threads: int) -> dict:
    """The model's perplexity through models.scoring, the same path the service's scores take:
    the RNN interpolated with its n-gram model if the file has one (then also the RNN alone)."""
    started = time.monotonic()
    loaded.model.threads = threads
    with blas_limits_for(threads):
        rnn_scores = score_sentences(loaded.model, sentences)
    tokens = sum(s.size for s in rnn_scores)
    rnn_log_likelihood = float(sum(s.sum() for s in rnn_scores))
    log_likelihood = rnn_log_likelihood
    figures: dict = {}
    if loaded.mixture is not None:
        log_likelihood = float(sum(s.sum() for s in loaded.mixture.text_log_probs(rnn_scores, sentences)))
        figures = {"rnn_perplexity": perplexity_from(rnn_log_likelihood, tokens), "ngram_order": loaded.mixture.order,
                   "ngram_weight": loaded.mixture.rnn_weight, "cache_weight": loaded.mixture.cache_weight,
                   "cache_size": loaded.mixture.cache_size}
    return {
        "perplexity": perplexity_from(log_likelihood, tokens),
        "loss": -log_likelihood / tokens,
        **figures,
        "seconds": round(time.monotonic() - started, 2),
    }


def ngram_figures(train: list[list[int]], sentences: list[list[int]], orders: list[int], vocab_size: int) -> dict:
    """Kneser-Ney perplexities by order (the unigram always among them), each model dropped after use to spare memory."""
    figures = {}
    for order in sorted({1, *orders}):
        started = time.monotonic()
        table = fit_tokens(flat_tokens(train), order, vocab_size, Vocabulary.start_id)
        fitted = time.monotonic()
        perplexity = perplexity_from(sum(float(np.log(table.token_probs(s)).sum()) for s in sentences),
                                     sum(len(s) - 1 for s in sentences))
        figures[str(order)] = {
            "perplexity": perplexity,
            "fit_seconds": round(fitted - started, 2),
            "score_seconds": round(time.monotonic() - fitted, 2),
        }
        log.info("Kneser-Ney order %d: perplexity %.2f (fit %.1f s, scoring %.1f s)",
                 order, perplexity, fitted - started, time.monotonic() - fitted)
    return figures


def run(args: argparse.Namespace) -> dict:
    """Every figure of the final JSON line; the corpus is read only where it is needed."""
    started = time.monotonic()
    loaded = load_model(args.model)
    vocab = loaded.vocab
    summary: dict = {"model": str(args.model)}
    if args.text is not None:
        sentences = encoded_text(args.text, vocab)
        summary["text"] = str(args.text)
    train: list[list[int]] = []
    if args.text is None or args.ngram:
        trained_on = loaded.info.get("corpus")
        if trained_on is not None and trained_on != args.corpus:
            log.warning("the model was trained on %r, evaluating against %r", trained_on, args.corpus)
        try:
            dataset = load_dataset(args.corpus, args.validation, Path(args.data_dir), len(vocab), vocab,
                                   workers=available_cores())
        except ValueError as exc:
            raise EvaluationError(str(exc)) from None
        summary["corpus"] = dataset.name
        train = dataset.train
        if args.text is None:
            sentences = dataset.valid
    tokens = sum(len(s) - 1 for s in sentences)
    unknown = sum(int(np.count_nonzero(np.asarray(s[1:]) == Vocabulary.unknown_id)) for s in sentences)
    summary.update(sentences=len(sentences), tokens=tokens, unk_rate=unknown / tokens, vocab_size=len(vocab))
    log.info("scoring %s tokens in %s sentences (%.2f%% UNKNOWN_TOKEN)", f"{tokens:,}", f"{len(sentences):,}",
             100 * unknown / tokens)
    summary.update(rnn_figures(loaded, sentences, args.threads))
    if "rnn_perplexity" in summary:
        log.info("model: perplexity %.2f (the RNN alone %.2f, interpolated with its Kneser-Ney %d-gram)",
                 summary["perplexity"], summary["rnn_perplexity"], summary["ngram_order"])
    else:
        log.info("RNN: perplexity %.2f", summary["perplexity"])
    if args.ngram:
        summary["ngram_train_tokens"] = sum(len(s) - 1 for s in train)
        summary["ngram"] = ngram_figures(train, sentences, args.ngram, len(vocab))
    summary["total_seconds"] = round(time.monotonic() - started, 2)
    return summary


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # exits with 2 and a usage line on bad flags
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        summary = run(args)
    except (ModelFileError, CorpusError, EvaluationError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

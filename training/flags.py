"""Command-line value types the training, evaluation and diagnosis commands share."""
from __future__ import annotations

import argparse
import math

from training.ngram_fit import parse_thresholds


def truncation(value: str) -> int | None:
    """``--bptt-truncate``: steps back beyond an output's own, or 'none'/'full' for full BPTT."""
    if value.lower() in ("none", "full"):
        return None
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be >= 0, or 'none' for full BPTT")
    return number


def positive(kind: type):
    """A parser of positive (and, for floats, finite) numbers of ``kind``."""
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


def ngram_order_flag(value: str) -> int:
    number = int(value)
    if not 0 <= number <= 6:
        raise argparse.ArgumentTypeError("must be 0 (no n-gram model) to 6")
    return number


def ngram_prune_flag(value: str) -> tuple[int, ...] | None:
    """``--ngram-prune``: count cut-offs per order, as ``training.ngram_fit.parse_thresholds`` reads
    them, or ``auto`` (None): ``training.ngram_fit.default_cut_offs`` for the corpus's size."""
    if value.strip().lower() == "auto":
        return None
    try:
        return parse_thresholds(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None

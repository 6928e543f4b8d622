"""What a model is: the one description that model files and checkpoints store and that every
command builds a model from (``models.build``)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from models.cells import CELLS, FILE_DEFAULT_CELL, TRAINING_DEFAULT_CELL
from models.initialisation import INITS
from models.recurrent_lm import RecurrentLM
from models.word_classes import WordClasses

SOFTMAXES = ("full", "class")


@dataclass(frozen=True)
class ModelConfig:
    """The architecture of a model. ``class_starts`` are the class softmax's classes once binned
    from a vocabulary's counts (``fitted_to``); None for the full softmax or before binning."""

    vocab_size: int
    hidden_size: int = 100
    cell: str = TRAINING_DEFAULT_CELL
    activation: str = "tanh"
    init: str = "uniform"  # how the recurrent matrices started: a record of training's start
    bptt_truncate: int | None = None
    bias: bool = True
    softmax: str = "full"
    class_starts: tuple[int, ...] | None = None

    def problem(self) -> str | None:
        """Why this combination cannot be built, or None."""
        if self.cell not in CELLS:
            return f"unknown cell {self.cell!r} (known: {', '.join(CELLS)})"
        if self.init not in INITS:
            return f"unknown initialisation {self.init!r} (known: {', '.join(INITS)})"
        cell = CELLS[self.cell]
        if self.activation not in cell.ACTIVATIONS or self.init not in cell.INITS:
            return (f"the {self.cell.upper()} cell takes --activation {' or '.join(cell.ACTIVATIONS)} and --init "
                    f"{' or '.join(cell.INITS)}, not --activation {self.activation} with --init {self.init}")
        if self.softmax not in SOFTMAXES:
            return f"unknown output layer {self.softmax!r} (known: {', '.join(SOFTMAXES)})"
        if self.softmax == "full" and self.class_starts is not None:
            return "word classes given for the full softmax"
        return None

    @property
    def classes(self) -> WordClasses | None:
        """The class softmax's classes; ValueError if they were never binned."""
        if self.softmax == "full":
            return None
        if self.class_starts is None:
            raise ValueError("the class softmax's classes are binned from the vocabulary first (fitted_to)")
        return WordClasses(self.class_starts)

    def fitted_to(self, counts: Sequence[int], n_classes: int | None = None) -> "ModelConfig":
        """This config for a vocabulary with these word counts: its size and, for the class softmax,
        about ``n_classes`` classes of equal mass (default: about sqrt(vocabulary size))."""
        starts = None
        if self.softmax == "class":
            classes = WordClasses.from_counts(counts, n_classes or WordClasses.default_count(len(counts)))
            starts = tuple(int(i) for i in classes.starts)
        return replace(self, vocab_size=len(counts), class_starts=starts)

    def to_payload(self) -> dict[str, Any]:
        """The plain dict a model file's "config" holds."""
        return {
            "cell": self.cell, "activation": self.activation, "init": self.init, "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size, "bptt_truncate": self.bptt_truncate, "bias": self.bias,
            "softmax": self.softmax, "class_starts": None if self.class_starts is None else list(self.class_starts),
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> "ModelConfig":
        """From a file's "config"; entries older files lack take what those files held: an RNN
        (before format 3), tanh and the uniform start (before the flags), the full softmax (format 1)."""
        starts = payload.get("class_starts")
        truncate = payload["bptt_truncate"]
        return cls(
            vocab_size=int(payload["vocab_size"]), hidden_size=int(payload["hidden_size"]),
            cell=str(payload.get("cell", FILE_DEFAULT_CELL)), activation=str(payload.get("activation", "tanh")),
            init=str(payload.get("init", "uniform")), bptt_truncate=None if truncate is None else int(truncate),
            bias=bool(payload["bias"]), softmax=str(payload.get("softmax", "full")),
            class_starts=None if starts is None else tuple(int(i) for i in starts),
        )

    @classmethod
    def of(cls, model: RecurrentLM) -> "ModelConfig":
        """The config a built model answers to."""
        return cls(
            vocab_size=model.vocab_size, hidden_size=model.hidden_size, cell=model.cell, activation=model.activation,
            init=model.init, bptt_truncate=model.bptt_truncate, bias=model.bias, softmax=model.softmax,
            class_starts=None if model.classes is None else tuple(int(i) for i in model.classes.starts),
        )

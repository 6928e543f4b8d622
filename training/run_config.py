"""Everything a training run is started with: what ``train.py`` builds from its flags, stores in
every checkpoint and, on ``--resume``, reads back to continue exactly as begun."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from collections.abc import Sequence

from models.build import StartOptions, initial_model
from models.model_config import ModelConfig
from models.recurrent_lm import RecurrentLM
from training.trainer import TrainConfig

DEFAULT_VOCAB_SIZE = 8000
# The class-based layer: within the default run's time budget it ends within 0.4% of the full
# softmax's interpolated perplexity, and a generated word costs a fraction (docs/measurements.md).
DEFAULT_SOFTMAX = "class"


@dataclass(frozen=True)
class RunConfig:
    """``model`` is the architecture asked for (``vocab_size``: the most words kept; the classes
    are binned from the training vocabulary, about ``classes`` of them); ``threads`` splits the
    output layer's rows, which changes the order of sums, so a resumed run keeps it."""

    corpus: str = "austen"
    validation: str | None = None
    # the default corpus's longest sentence is 297 words (Persuasion's 215), so it is never cut
    max_sentence_words: int = 400
    model: ModelConfig = field(default_factory=lambda: ModelConfig(vocab_size=DEFAULT_VOCAB_SIZE, softmax=DEFAULT_SOFTMAX))
    classes: int | None = None
    start: StartOptions = field(default_factory=StartOptions)
    train: TrainConfig = field(default_factory=TrainConfig)
    learning_rate: float = 4.0
    max_halvings: int = 6
    min_improvement: float = 0.0
    max_minutes: float = 9.5
    ngram_order: int = 5
    ngram_weight: float | None = None  # None: chosen on a development split of the training text
    ngram_prune: tuple[int, ...] | None = None  # count cut-offs per order, as lmplz --prune; None: by corpus size
    threads: int = 1

    def initial_model(self, counts: Sequence[int]) -> RecurrentLM:
        """The model this run starts from, for a training vocabulary with these word counts."""
        return initial_model(self.model.fitted_to(counts, self.classes), counts, self.train.seed, self.start)

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (what a checkpoint and a model file's info hold)."""
        return {**asdict(self), "model": self.model.to_payload()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        return cls(**{**data, "model": ModelConfig.from_payload(data["model"]), "start": StartOptions(**data["start"]),
                      "train": TrainConfig(**data["train"]), "ngram_prune": None if data["ngram_prune"] is None else tuple(data["ngram_prune"])})

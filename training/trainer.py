"""The training loop: length-bucketed minibatches, clipped SGD, held-out evaluation, checkpoints.

Everything that decides what happens next (epoch, batch position, learning rate, best loss,
history) lives in ``Progress`` and ``HalvingSchedule``, which are saved at every evaluation;
each epoch's batch order comes from a generator seeded with (seed, epoch). So a run resumed from
a checkpoint takes exactly the steps the uninterrupted run would have taken.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from models.batching import Batch, length_buckets, make_batch, scoring_batches, sentence_pairs
from models.recurrent_lm import RecurrentLM
from training.schedule import HalvingSchedule
from training.sentences import EncodedSentences
from training.sgd import clip_by_global_norm, sgd_step

log = logging.getLogger(__name__)

VALID_BATCH_SIZE = 128


@dataclass
class TrainConfig:
    """How the loop trains: ``batch_size`` sentences a step, at most ``epochs`` passes, an evaluation
    every ``eval_every`` training words, the global gradient norm clipped at ``clip`` (None: not)."""

    batch_size: int = 16
    epochs: int = 30
    eval_every: int = 500_000
    clip: float | None = 0.25
    seed: int = 0
    progress_seconds: float = 10.0
    token_weighting: bool = True
    dropout: float = 0.0


@dataclass
class Progress:
    """Where training stands; a plain dict of it goes into every checkpoint."""

    epoch: int = 0
    batch_index: int = 0
    train_words: int = 0
    words_at_last_eval: int = 0
    train_seconds: float = 0.0
    seconds: float = 0.0
    skipped_batches: int = 0
    val_loss: float = math.inf
    stop_reason: str = ""
    history: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Progress":
        return cls(**data)


def _halving_note(decision) -> str:
    if not decision.halved:
        return ""
    if decision.improved:
        return ", too little better: rate halved"
    return ", worse: rate halved, best parameters restored"


def _format_seconds(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Trainer:
    """Runs SGD until the epochs, the time budget or the learning-rate floor say stop."""

    def __init__(
        self,
        model: RecurrentLM,
        train: Sequence[Sequence[int]],
        valid: list[list[int]],
        config: TrainConfig,
        schedule: HalvingSchedule,
        progress: Progress | None = None,
        deadline: float | None = None,
        on_checkpoint: Callable[["Trainer"], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.model = model
        # inputs and targets are cut per batch from the (maybe memory-mapped) arrays: no copy of the corpus
        self.sentences = EncodedSentences.from_lists(train)
        self.lengths = self.sentences.lengths() - 1
        self.valid_batches = scoring_batches(*sentence_pairs(valid), VALID_BATCH_SIZE)
        self.config = config
        self.schedule = schedule
        self.progress = progress or Progress()
        self.deadline = deadline
        self.on_checkpoint = on_checkpoint
        self.clock = clock
        self.words_per_epoch = int(self.lengths.sum())
        # Every token weighs the same: a batch's summed loss is divided by the *average* tokens per
        # batch, not its own count, so a batch of short sentences does not take a full-size step.
        self.tokens_per_batch = self.words_per_epoch / math.ceil(len(self.lengths) / config.batch_size)
        self._eval_seconds = 0.0
        self._started = clock()
        self._last_report = self._started
        self._recent_loss = (0.0, 0)

    # ------------------------------------------------------------------ one step
    def train_batch(self, batch: Batch) -> bool:
        """One clipped SGD step; False if the batch was skipped as non-finite."""
        n = batch.n_tokens
        scale = 1.0 / (self.tokens_per_batch if self.config.token_weighting else n)
        with np.errstate(all="ignore"):  # a non-finite batch is reported once below, not per operation
            loss, grads = self.model.batch_loss_and_gradients(
                batch.inputs, batch.targets, batch.mask, scale=scale, dropout=self.config.dropout,
                rng=self._dropout_rng(),
            )
            norm = clip_by_global_norm(grads, self.config.clip)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            self.progress.skipped_batches += 1
            log.warning("skipped a batch with a non-finite loss or gradient (%d so far)", self.progress.skipped_batches)
            return False
        # the input matrices' gradients are zero outside the batch's input words (padding included:
        # its error is 0), so only those columns are updated
        used = np.unique(batch.inputs)
        columns = {name: used for name in self.model.input_matrix_names}
        sgd_step(self.model.parameters(), grads, self.schedule.learning_rate, columns)
        total, count = self._recent_loss
        self._recent_loss = (total + loss, count + n)
        return True

    def _dropout_rng(self) -> np.random.Generator | None:
        """The dropout masks of a batch depend only on (seed, epoch, batch): a resumed run draws the same."""
        if self.config.dropout <= 0:
            return None
        p = self.progress
        return np.random.default_rng([self.config.seed, p.epoch, p.batch_index, 1])

    # ---------------------------------------------------------------- evaluation
    def evaluate(self) -> bool:
        """Score the held-out text, apply the halving rule, checkpoint; True if training should stop."""
        start = self.clock()
        val_loss = self.model.mean_batch_loss(self.valid_batches)
        self._eval_seconds = self.clock() - start
        decision = self.schedule.observe(val_loss)
        if decision.improved:
            self._best = {k: v.copy() for k, v in self.model.parameters().items()}
        elif getattr(self, "_best", None) is not None:
            self.model.set_parameters(self._best)
        p = self.progress
        p.words_at_last_eval = p.train_words
        p.val_loss = self.schedule.best_loss
        self._sync_seconds()
        p.history.append(
            {
                "train_words": p.train_words,
                "seconds": round(p.seconds, 2),
                "val_loss": val_loss,
                "val_perplexity": math.exp(val_loss) if val_loss < 700 else math.inf,
                "learning_rate": self.schedule.learning_rate,
                "halved": decision.halved,
            }
        )
        log.info(
            "eval at %s words: validation loss %.4f (perplexity %.2f)%s; learning rate %g",
            f"{p.train_words:,}", val_loss, math.exp(min(val_loss, 700)),
            _halving_note(decision),
            self.schedule.learning_rate,
        )
        if decision.stop:
            p.stop_reason = "learning rate halved past the floor"
        if self.on_checkpoint is not None:
            self.on_checkpoint(self)
        return decision.stop

    def adopt_best(self, params: dict[str, np.ndarray]) -> None:
        """Tell a resumed trainer which parameters were best (they equal the current ones at a checkpoint)."""
        self._best = {k: v.copy() for k, v in params.items()}

    # ------------------------------------------------------------------- the loop
    def _sync_seconds(self) -> None:
        now = self.clock()
        self.progress.seconds += now - self._started
        self._started = now

    def _out_of_time(self) -> bool:
        if self.deadline is None:
            return False
        reserve = 1.5 * self._eval_seconds + 1.0
        return self.clock() + reserve >= self.deadline

    def _report(self, batches_in_epoch: int) -> None:
        now = self.clock()
        if now - self._last_report < self.config.progress_seconds:
            return
        self._last_report = now
        p = self.progress
        rate = p.train_words / p.train_seconds if p.train_seconds else 0.0
        total, count = self._recent_loss
        self._recent_loss = (0.0, 0)
        left_words = (self.config.epochs - p.epoch) * self.words_per_epoch - (
            p.batch_index / max(batches_in_epoch, 1) * self.words_per_epoch
        )
        eta = left_words / rate if rate else math.inf
        if self.deadline is not None:
            eta = min(eta, self.deadline - now)
        log.info(
            "epoch %d %3.0f%% | %s words | %s words/s | train loss %.3f | lr %g | about %s left",
            p.epoch + 1, 100 * p.batch_index / max(batches_in_epoch, 1), f"{p.train_words:,}",
            f"{rate:,.0f}", total / count if count else float("nan"), self.schedule.learning_rate,
            _format_seconds(eta),
        )

    def run(self) -> Progress:
        """Train to the end; the model then holds the best parameters seen at an evaluation."""
        p, cfg = self.progress, self.config
        self._started = self.clock()
        stop = False
        while p.epoch < cfg.epochs and not stop:
            order = length_buckets(self.lengths, cfg.batch_size, np.random.default_rng([cfg.seed, p.epoch]))
            while p.batch_index < len(order):
                if self._out_of_time():
                    p.stop_reason = "time budget reached"
                    stop = True
                    break
                chosen = order[p.batch_index]
                sentences = [self.sentences[i] for i in chosen]
                batch = make_batch([s[:-1] for s in sentences], [s[1:] for s in sentences])
                step_start = self.clock()
                if self.train_batch(batch):
                    p.train_words += batch.n_tokens
                p.train_seconds += self.clock() - step_start
                p.batch_index += 1
                self._report(len(order))
                if p.train_words - p.words_at_last_eval >= cfg.eval_every and self.evaluate():
                    stop = True
                    break
            else:
                p.epoch += 1
                p.batch_index = 0
        if not p.stop_reason:
            p.stop_reason = "epochs done"
        if p.train_words > p.words_at_last_eval or not p.history:
            self.evaluate()
        self._sync_seconds()
        return p

"""The tutorial's learning-rate rule, made sound: halve on a worse held-out loss, roll back, stop at a floor."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Decision:
    improved: bool
    halved: bool
    stop: bool


@dataclass
class HalvingSchedule:
    """Tracks the best validation loss and the learning rate.

    After each evaluation: a loss lower than the best so far is kept (the caller saves those
    parameters); otherwise the rate is halved and the caller restores the best parameters.
    A loss that is lower by less than ``min_improvement`` (a fraction of the best loss) is kept
    but halves the rate too: the rate has stopped paying (Mikolov's RNNLM toolkit does the same),
    and waiting for a worse loss wastes an evaluation period at a rate that no longer helps.
    Training stops once the rate has been halved more than ``max_halvings`` times.
    """

    learning_rate: float
    max_halvings: int
    best_loss: float = math.inf
    halvings: int = 0
    min_improvement: float = 0.0

    def observe(self, val_loss: float) -> Decision:
        improved = math.isfinite(val_loss) and val_loss < self.best_loss
        stalled = improved and val_loss > self.best_loss * (1.0 - self.min_improvement)
        if improved:
            self.best_loss = val_loss
            if not stalled:
                return Decision(improved=True, halved=False, stop=False)
        self.halvings += 1
        self.learning_rate /= 2.0
        return Decision(improved=improved, halved=True, stop=self.halvings > self.max_halvings)

    def state(self) -> dict:
        return {"learning_rate": self.learning_rate, "max_halvings": self.max_halvings,
                "best_loss": self.best_loss, "halvings": self.halvings, "min_improvement": self.min_improvement}

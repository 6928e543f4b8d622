"""After training: fit the Kneser-Ney model the RNN is interpolated with, and measure all three.

The n-gram model is counted on the same training sentences with the RNN's vocabulary, so the
mixture never sees the validation text; its weight is a fixed setting (``--ngram-weight``), not
tuned on the text it is then measured on.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.mixture import NgramMixture
from models.recurrent_lm import RecurrentLM
from models.scoring import perplexity_from, score_sentences
from models.vocabulary import Vocabulary
from training.ngram_counts import flat_tokens
from training.ngram_fit import fit_tokens, thresholds_for

log = logging.getLogger(__name__)

# what fitting a 5-gram on the Austen novels and scoring Persuasion take, with room to spare
RESERVE_SECONDS = 25.0


@dataclass
class InterpolationResult:
    mixture: NgramMixture
    val_loss: float  # the mixture's
    rnn_val_loss: float
    ngram_val_loss: float
    seconds: float
    prune: list[int]  # the count cut-off of each order

    def figures(self) -> dict:
        return {
            "ngram_order": self.mixture.order,
            "ngram_weight": self.mixture.rnn_weight,
            "ngram_prune": list(self.prune),
            "rnn_val_perplexity": float(np.exp(self.rnn_val_loss)),
            "ngram_val_perplexity": float(np.exp(self.ngram_val_loss)),
        }


def interpolate(
    model: RecurrentLM, train: list[list[int]], valid: list[list[int]], order: int, rnn_weight: float,
    prune: Sequence[int] = (0,),
) -> InterpolationResult:
    """Fit the order-``order`` Kneser-Ney model (with these count cut-offs) and score the validation
    text with the RNN, it and the mixture."""
    started = time.monotonic()
    thresholds = thresholds_for(prune, order)
    table = fit_tokens(flat_tokens(train), order, model.vocab_size, Vocabulary.start_id, thresholds)
    mixture = NgramMixture(table, rnn_weight)
    rnn_scores = score_sentences(model, valid)
    tokens = sum(s.size for s in rnn_scores)
    rnn_ll = float(sum(s.sum() for s in rnn_scores))
    ngram_ll = float(sum(np.log(table.token_probs(s)).sum() for s in valid))
    mixed_ll = float(sum(mixture.sentence_log_probs(r, s).sum() for r, s in zip(rnn_scores, valid)))
    result = InterpolationResult(mixture, -mixed_ll / tokens, -rnn_ll / tokens, -ngram_ll / tokens,
                                 time.monotonic() - started, thresholds)
    log.info(
        "validation perplexity: RNN %.2f, Kneser-Ney %d-gram %.2f, interpolated (RNN weight %g) %.2f (%.1f s)",
        perplexity_from(rnn_ll, tokens), order, perplexity_from(ngram_ll, tokens), rnn_weight,
        perplexity_from(mixed_ll, tokens), result.seconds,
    )
    return result

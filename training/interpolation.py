"""After training: fit the Kneser-Ney model the RNN is interpolated with, choose the mixture
weight, and measure all three.

The n-gram model is counted on the same training sentences with the RNN's vocabulary. The
weight, and the discounts the mixture wants (``training.discount_tuning``), are chosen on a
development split carved from the training text, which neither model trained on
(``training.dataset.development_split``), never on the validation text they are then measured
on; ``--ngram-weight`` fixes the weight instead, and the discounts are then the estimated ones.
After them, the unigram cache's weight and window size (``models.mixture``) are chosen on the
development sentences, each read after the text before it (no cache with a fixed weight).
Once both are chosen, the n-gram model the file keeps is counted on all the training text, the
development sentences included (the RNN has finished training by then).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.mixture import DEFAULT_RNN_WEIGHT, NgramMixture
from models.recent_text import cache_token_probs
from models.recurrent_lm import RecurrentLM
from models.scoring import perplexity_from, score_sentences
from models.vocabulary import Vocabulary
from training.budget import recounts_with_development
from training.discount_tuning import TokenCounts, as_array, rounded, tune_discounts
from training.kneser_ney import Discounts
from training.ngram_counts import flat_tokens
from training.ngram_fit import ArrangedCounts, arrange_tokens, default_cut_offs, thresholds_for

log = logging.getLogger(__name__)



@dataclass
class InterpolationResult:
    mixture: NgramMixture
    val_loss: float  # the mixture's
    rnn_val_loss: float
    ngram_val_loss: float
    seconds: float
    prune: list[int]  # the count cut-off of each order
    development: dict | None  # how the weight was chosen, if it was

    def figures(self) -> dict:
        return {
            "ngram_order": self.mixture.order,
            "ngram_weight": self.mixture.rnn_weight,
            "ngram_prune": list(self.prune),
            "rnn_val_perplexity": float(np.exp(self.rnn_val_loss)),
            "ngram_val_perplexity": float(np.exp(self.ngram_val_loss)),
            "ngram_weight_choice": self.development,
            "cache_weight": self.mixture.cache_weight,
            "cache_size": self.mixture.cache_size,
        }


WEIGHT_STEP = 0.01


def choose_weight(rnn_probs: np.ndarray, ngram_probs: np.ndarray) -> float:
    """The RNN weight, on a grid of WEIGHT_STEP in (0, 1], that gives these tokens the highest
    likelihood (the log-likelihood is concave in the weight: the grid's best is within a step)."""
    weights = np.arange(1, round(1 / WEIGHT_STEP) + 1) * WEIGHT_STEP
    scores = [np.log(w * rnn_probs + (1.0 - w) * ngram_probs).sum() for w in weights]
    return float(round(weights[int(np.argmax(scores))], 2))


CACHE_SIZES = (100, 200, 300, 500, 1000)
CACHE_WEIGHTS = np.arange(0, 31) * 0.005


def choose_cache(mixed: np.ndarray, development: Sequence[Sequence[int]], contexts: Sequence[Sequence[int]],
                 ) -> tuple[float, int, float]:
    """The cache weight (on the grid CACHE_WEIGHTS) and window size (one of CACHE_SIZES) that give
    the development tokens the highest likelihood, given their mixture probabilities ``mixed``
    without a cache and the text before each sentence: (weight, size, log-likelihood); (0, 0, ...)
    when no cache helps."""
    best = (0.0, 0, float(np.log(mixed).sum()))
    for size in CACHE_SIZES:
        cache = np.concatenate([cache_token_probs([sentence], size, before)[0]
                                for sentence, before in zip(development, contexts)])
        filled = ~np.isnan(cache)
        for weight in CACHE_WEIGHTS[1:]:
            score = float(np.log(np.where(filled, (1.0 - weight) * mixed + weight * np.nan_to_num(cache), mixed)).sum())
            if score > best[2]:
                best = (float(round(weight, 3)), size, score)
    return best


def _choose_on(model: RecurrentLM, arranged: ArrangedCounts, development: list[list[int]],
               contexts: Sequence[Sequence[int]] | None) -> tuple[list[Discounts], float, tuple[float, int], dict]:
    """The discounts chosen for the mixture, the chosen weight and cache (weight, size), and the
    development split's figures. ``contexts``: the text before each development sentence (None:
    none before any)."""
    rnn = np.exp(np.concatenate(score_sentences(model, development)))
    choice = tune_discounts(arranged, development, rnn, choose_weight)
    weight, ngram = choice.weight, choice.ngram_probs
    mixed = weight * rnn + (1.0 - weight) * ngram
    cache_weight, cache_size, cache_ll = choose_cache(mixed, development, contexts or [()] * len(development))
    figures = {"tokens": int(rnn.size), "weight": weight,
               "rnn_perplexity": float(np.exp(-np.log(rnn).mean())),
               "ngram_perplexity": float(np.exp(-np.log(ngram).mean())),
               "mixture_perplexity": float(np.exp(-choice.log_likelihood / rnn.size)),
               "discounts": rounded(as_array(choice.discounts)),
               "estimated_discounts": rounded(as_array(arranged.estimated)),
               "estimated_discounts_mixture_perplexity": float(np.exp(-choice.estimated_log_likelihood / rnn.size)),
               "cache_weight": cache_weight, "cache_size": cache_size,
               "cache_mixture_perplexity": float(np.exp(-cache_ll / rnn.size))}
    log.info("RNN weight %.2f chosen on %s development tokens (perplexity: RNN %.2f, n-gram %.2f, mixture %.2f)",
             weight, f"{rnn.size:,}", figures["rnn_perplexity"], figures["ngram_perplexity"],
             figures["mixture_perplexity"])
    log.info("cache weight %g over the last %d tokens chosen on the development tokens (mixture perplexity %.2f)",
             cache_weight, cache_size, figures["cache_mixture_perplexity"])
    return choice.discounts, weight, (cache_weight, cache_size), figures


def interpolate(
    model: RecurrentLM, train: list[list[int]], valid: list[list[int]], order: int, rnn_weight: float | None,
    prune: Sequence[int] | None = (0,), development: list[list[int]] | None = None,
    development_before: Sequence[Sequence[int]] | None = None,
) -> InterpolationResult:
    """Fit the order-``order`` Kneser-Ney model (with these count cut-offs; None: the default for
    the corpus's size), choose the RNN's weight and the discounts on ``development`` unless the
    weight is given (the n-gram model is then counted again with the development sentences, where
    they are a share of the text worth it: ``training.budget.recounts_with_development``), then
    the cache's weight and size (``development_before``: the text before each development
    sentence, ``training.dataset.development_contexts``), and score the validation text with the RNN, the n-gram model and the mixture."""
    started = time.monotonic()
    train_tokens = flat_tokens(train)
    thresholds = thresholds_for(default_cut_offs(train_tokens.size) if prune is None else prune, order)
    arranged = arrange_tokens(train_tokens, order, model.vocab_size, Vocabulary.start_id, thresholds)
    chosen = None
    cache = (0.0, 0)
    if rnn_weight is None and not development:
        log.warning("no development sentences to choose the n-gram weight on; using %g", DEFAULT_RNN_WEIGHT)
        rnn_weight = DEFAULT_RNN_WEIGHT
    if rnn_weight is None:
        discounts, rnn_weight, cache, chosen = _choose_on(model, arranged, development, development_before)
        development_tokens = flat_tokens(development)
        if recounts_with_development(train_tokens.size, development_tokens.size):
            # the choices made, the development sentences are training text like the rest
            arranged = None  # let the first counts go before the second are made
            arranged = arrange_tokens(np.concatenate([train_tokens, development_tokens]), order, model.vocab_size,
                                      Vocabulary.start_id, thresholds)
    else:
        discounts = arranged.estimated
    table = arranged.table(discounts)
    mixture = NgramMixture(table, rnn_weight, *cache)
    rnn_scores = score_sentences(model, valid)
    tokens = sum(s.size for s in rnn_scores)
    rnn_ll = float(sum(s.sum() for s in rnn_scores))
    ngram_ll = float(np.log(TokenCounts.gather(arranged, valid).probs(discounts)).sum())
    mixed_ll = float(sum(s.sum() for s in mixture.text_log_probs(rnn_scores, valid)))
    result = InterpolationResult(mixture, -mixed_ll / tokens, -rnn_ll / tokens, -ngram_ll / tokens,
                                 time.monotonic() - started, thresholds, chosen)
    log.info(
        "validation perplexity: RNN %.2f, Kneser-Ney %d-gram %.2f, interpolated (RNN weight %g, cache weight %g "
        "over %d tokens) %.2f (%.1f s)",
        perplexity_from(rnn_ll, tokens), order, perplexity_from(ngram_ll, tokens), rnn_weight, *cache,
        perplexity_from(mixed_ll, tokens), result.seconds,
    )
    return result

"""What the time budget keeps back for the phases after the RNN's training.

``--max-minutes`` counts from the end of tokenization (cached, and shown with its own progress)
to the saved file: the RNN trains until the deadline less this reserve, then the n-gram model is
counted and fitted over the training tokens, the validation (and development) text is scored,
and the file is written. The rates are measured ones with room to spare: the 5-gram counted and
fitted at about 2.1 µs a training token at 100M words (104M tokens counted in 204 s and arranged
in 17 s on a loaded machine, docs/corpus-scale.md; 3 µs leaves the RNN half the budget there
instead of 35 s of 10 minutes, with half as much again kept in hand), and the default GRU scored Persuasion at about 50 µs a token with its n-gram model (AMD EPYC, see the
README); choosing the discounts for the mixture (``training.discount_tuning``: about 560
evaluations of the mixture on the development tokens) took 2.6 to 4.6 s for 15,598 development
tokens on a loaded machine, about 0.3 ms a token; with a development split, the n-gram model is
counted twice (without it, to choose on it, and with it); the base covers loading, the checkpoint and
writing the file.
"""
from __future__ import annotations

# The n-gram model the file keeps is counted again with the development sentences once they have
# chosen the weight and the discounts, where they add at least this share of the training text: on
# a small corpus every 50th sentence (2%); on a large one the split is capped (0.05% of 100M
# words), and counting every token a second time for it would take the RNN's training time.
RECOUNT_MIN_DEVELOPMENT_SHARE = 0.01

BASE_SECONDS = 10.0
NGRAM_SECONDS_PER_TRAINING_TOKEN = 3e-6
SCORING_SECONDS_PER_TOKEN = 1e-4
DISCOUNT_SEARCH_SECONDS_PER_DEVELOPMENT_TOKEN = 3e-4


def reserve_seconds(train_tokens: int, valid_tokens: int, development_tokens: int, ngram_order: int) -> float:
    """Seconds to keep for the final evaluation, the n-gram fit (if any), scoring and saving."""
    seconds = BASE_SECONDS + SCORING_SECONDS_PER_TOKEN * valid_tokens  # the trainer's last evaluation
    if ngram_order:
        seconds += NGRAM_SECONDS_PER_TRAINING_TOKEN * train_tokens
        if recounts_with_development(train_tokens, development_tokens):
            seconds += NGRAM_SECONDS_PER_TRAINING_TOKEN * (train_tokens + development_tokens)
        seconds += SCORING_SECONDS_PER_TOKEN * (valid_tokens + development_tokens)
        seconds += DISCOUNT_SEARCH_SECONDS_PER_DEVELOPMENT_TOKEN * development_tokens
    return seconds


def recounts_with_development(train_tokens: int, development_tokens: int) -> bool:
    """Whether the kept n-gram model is counted again with the development sentences."""
    return development_tokens > 0 and development_tokens >= RECOUNT_MIN_DEVELOPMENT_SHARE * train_tokens

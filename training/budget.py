"""What the time budget keeps back for the phases after the RNN's training.

``--max-minutes`` counts from the end of tokenization (cached, and shown with its own progress)
to the saved file: the RNN trains until the deadline less this reserve, then the n-gram model is
counted and fitted over the training tokens, the validation (and development) text is scored,
and the file is written. The rates are measured ones with room to spare: the 5-gram counted and
fitted at about 2.8 µs a training token on the default corpus and 3.5 µs at 10M words, and the
default GRU scored Persuasion at about 50 µs a token with its n-gram model (AMD EPYC, see the
README); choosing the discounts for the mixture (``training.discount_tuning``: about 560
evaluations of the mixture on the development tokens) took 2.6 to 4.6 s for 15,598 development
tokens on a loaded machine, about 0.3 ms a token; with a development split, the n-gram model is
counted twice (without it, to choose on it, and with it); the base covers loading, the checkpoint and
writing the file.
"""
from __future__ import annotations

BASE_SECONDS = 10.0
NGRAM_SECONDS_PER_TRAINING_TOKEN = 5e-6
SCORING_SECONDS_PER_TOKEN = 1e-4
DISCOUNT_SEARCH_SECONDS_PER_DEVELOPMENT_TOKEN = 3e-4


def reserve_seconds(train_tokens: int, valid_tokens: int, development_tokens: int, ngram_order: int) -> float:
    """Seconds to keep for the final evaluation, the n-gram fit (if any), scoring and saving."""
    seconds = BASE_SECONDS + SCORING_SECONDS_PER_TOKEN * valid_tokens  # the trainer's last evaluation
    if ngram_order:
        seconds += NGRAM_SECONDS_PER_TRAINING_TOKEN * train_tokens
        if development_tokens:  # counted again with the development sentences once they have chosen
            seconds += NGRAM_SECONDS_PER_TRAINING_TOKEN * (train_tokens + development_tokens)
        seconds += SCORING_SECONDS_PER_TOKEN * (valid_tokens + development_tokens)
        seconds += DISCOUNT_SEARCH_SECONDS_PER_DEVELOPMENT_TOKEN * development_tokens
    return seconds

"""Building a model from its config: as a file's parameters then fill it (``build_model``), or as
training starts it (``initial_model``). The one path every command takes."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.cells import cell_class
from models.initialisation import start_recurrent
from models.model_config import ModelConfig
from models.recurrent_lm import RecurrentLM


@dataclass(frozen=True)
class StartOptions:
    """How training starts the parameters, beyond the tutorial's uniform start (measured in the README).

    ``input_init`` > 0: the input matrices start uniform in +-input_init (a one-hot input has one
    active connection, so the tutorial's +-1/sqrt(C) hides the input at first); 0 keeps the
    tutorial's. ``unigram_bias``: the output biases start at the unigram (with biases)."""

    input_init: float = 1.0
    unigram_bias: bool = True


def build_model(config: ModelConfig, seed: int = 0, dtype: np.dtype | type = np.float32) -> RecurrentLM:
    """The model ``config`` describes, with the tutorial's start; ValueError if it cannot be built."""
    problem = config.problem()
    if problem:
        raise ValueError(problem)
    model = cell_class(config.cell)(config.vocab_size, config.hidden_size, bptt_truncate=config.bptt_truncate,
                                    seed=seed, bias=config.bias, dtype=dtype, classes=config.classes,
                                    activation=config.activation)
    model.init = config.init
    return model


def initial_model(
    config: ModelConfig, counts: Sequence[int], seed: int = 0, start: StartOptions = StartOptions()
) -> RecurrentLM:
    """The model training starts from (``seed``): the tutorial's, then the recurrent matrices'
    start (``config.init``), the input matrices' range and the unigram biases ``start`` asks for."""
    model = build_model(config, seed)
    start_recurrent(model, config.init, np.random.default_rng([seed, 2]))
    if start.input_init > 0:
        rng = np.random.default_rng([seed, 1])
        for name in model.input_matrix_names:
            matrix = getattr(model, name)
            matrix[:] = rng.uniform(-start.input_init, start.input_init, matrix.shape)
    if config.bias and start.unigram_bias:
        model.output.start_at_unigram(counts)
    return model

"""ModelConfig: what files and checkpoints store and every command builds from; RunConfig: what a
training run stores to resume as begun."""
from __future__ import annotations

import numpy as np
import pytest

from models.build import StartOptions, build_model, initial_model
from models.model_config import ModelConfig
from models.model_file import model_from_payload, model_payload
from models.vocabulary import Vocabulary
from training import train
from training.run_config import RunConfig
from training.trainer import TrainConfig

COUNTS = [5, 0, 5] + [40 - i for i in range(27)]


def vocabulary() -> Vocabulary:
    return Vocabulary(["UNKNOWN_TOKEN", "SENTENCE_START", "SENTENCE_END"] + [f"w{i}" for i in range(27)])


@pytest.mark.parametrize("config", [
    ModelConfig(vocab_size=30, hidden_size=6, cell="rnn", activation="relu", init="identity", bptt_truncate=3),
    ModelConfig(vocab_size=30, hidden_size=5, cell="gru", bias=False, softmax="class").fitted_to(COUNTS, 8),
])
def test_a_model_file_stores_the_config_it_was_built_from(config):
    model = initial_model(config, COUNTS, seed=4)
    loaded = model_from_payload(model_payload(model, vocabulary(), {}))
    assert ModelConfig.of(loaded.model) == ModelConfig.of(model) == config
    assert ModelConfig.from_payload(config.to_payload()) == config


def test_files_from_before_the_entries_existed_read_as_what_they_held():
    """Format 1 had no cell, activation, init or softmax: an RNN with tanh, the uniform start, a full softmax."""
    stored = {"vocab_size": 30, "hidden_size": 4, "bptt_truncate": 4, "bias": True}
    assert ModelConfig.from_payload(stored) == ModelConfig(vocab_size=30, hidden_size=4, cell="rnn", bptt_truncate=4)


@pytest.mark.parametrize("changes, problem", [
    ({"cell": "transformer"}, "unknown cell 'transformer'"),
    ({"cell": "gru", "activation": "relu"}, "the GRU cell takes --activation tanh"),
    ({"cell": "gru", "init": "identity"}, "--init uniform or orthogonal"),
    ({"init": "zeros"}, "unknown initialisation 'zeros'"),
    ({"softmax": "hierarchical"}, "unknown output layer"),
    ({"class_starts": (0, 1, 2, 3, 30)}, "word classes given for the full softmax"),
])
def test_a_config_that_cannot_be_built_says_why(changes, problem):
    config = ModelConfig(vocab_size=30, **{"cell": "rnn", **changes})
    assert problem in config.problem()
    with pytest.raises(ValueError, match=problem.split("'")[0]):
        build_model(config)


def test_classes_are_binned_from_the_vocabulary():
    asked = ModelConfig(vocab_size=8000, softmax="class")
    with pytest.raises(ValueError, match="binned from the vocabulary first"):
        build_model(asked)
    fitted = asked.fitted_to(COUNTS, 6)
    assert fitted.vocab_size == 30 and fitted.class_starts[:3] == (0, 1, 2) and fitted.class_starts[-1] == 30
    assert build_model(fitted).classes.n_classes == len(fitted.class_starts) - 1


def test_flags_defaults_are_the_configs_defaults():
    """One set of defaults: the command's are the dataclasses'."""
    config = train.run_config(train.build_parser().parse_args([]))
    assert config == RunConfig(threads=config.threads)
    assert config.train == TrainConfig() and config.start == StartOptions()
    assert config.model == ModelConfig(vocab_size=8000, softmax="class")


def test_a_run_config_round_trips_through_plain_values():
    config = train.run_config(train.build_parser().parse_args(
        ["--cell", "rnn", "--softmax", "class", "--classes", "9", "--dropout", "0.1", "--no-unigram-bias", "--seed", "3"]))
    assert RunConfig.from_dict(config.to_dict()) == config
    model = config.initial_model(COUNTS)
    assert model.classes.n_classes <= 9 and model.cell == "rnn"
    np.testing.assert_array_equal(model.output.c, 0.0)  # no unigram start asked for

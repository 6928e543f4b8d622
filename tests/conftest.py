"""Shared fixtures: a tiny untrained model file, the service built on it, and its test client."""
from __future__ import annotations

import math

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from models.model_file import LoadedModel, load_model, save_model
from models.rnn import RNN
from models.vocabulary import SPECIAL_TOKENS, Vocabulary
from service.app import create_app
from service.config import ServiceConfig

TINY_WORDS = (
    "the a cat dog bird sat ran flew on under over mat tree house and but quickly slowly "
    "big small red blue happy sad today . , ! ? she he it"
).split()


def evaluation(train_words: int, val_perplexity: float, learning_rate: float, halved: bool) -> dict:
    """One entry of a training history, as training/trainer.py records it."""
    return {"train_words": train_words, "seconds": train_words / 1000, "val_loss": math.log(val_perplexity),
            "val_perplexity": val_perplexity, "learning_rate": learning_rate, "halved": halved}


TINY_INFO = {
    "corpus": "tiny-test-corpus",
    "train_words": 1234,
    "val_perplexity": 33.5,
    "val_loss": 3.51,
    "trained_at": "2024-01-02T03:04:05+00:00",
    "seconds": 1.5,
    # made up, with a worse evaluation that halved the rate and a small gain that halved it again
    "history": [evaluation(300, 61.0, 0.1, False), evaluation(600, 42.0, 0.1, False),
                evaluation(900, 44.5, 0.05, True), evaluation(1100, 34.0, 0.05, False),
                evaluation(1234, 33.5, 0.025, True)],
}


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved model: the 3 special tokens + 32 words, hidden size 8, random weights.

    Untrained, so every next word is nearly equally likely (sentences average ~25 words).
    """
    vocab = Vocabulary(list(SPECIAL_TOKENS) + TINY_WORDS)
    path = tmp_path_factory.mktemp("model") / "tiny.joblib"
    save_model(path, RNN(len(vocab), 8, seed=0), vocab, TINY_INFO)
    return path


@pytest.fixture(scope="session")
def tiny_loaded_model(tiny_model_path: Path) -> LoadedModel:
    return load_model(tiny_model_path)


@pytest.fixture(scope="session")
def service_config(tiny_model_path: Path) -> ServiceConfig:
    """Default limits, serving the tiny model."""
    return ServiceConfig(model_path=str(tiny_model_path))


@pytest.fixture(scope="session")
def app(service_config: ServiceConfig) -> Flask:
    return create_app(service_config)


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()

"""Shared fixtures: a tiny untrained model file, the service built on it, and its test client."""
from __future__ import annotations

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

TINY_INFO = {
    "corpus": "tiny-test-corpus",
    "train_words": 1234,
    "val_perplexity": 33.5,
    "val_loss": 3.51,
    "trained_at": "2024-01-02T03:04:05+00:00",
    "seconds": 1.5,
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

"""What /info reports about the loaded model, built once at start.

The training ``info`` dict comes from the model file and every key is optional, so missing keys
become null and values are made JSON-safe (NumPy scalars to Python, NaN and infinity to null).
"""
from __future__ import annotations

import math
import os
from importlib.metadata import version
from typing import Any

import numpy as np

from models.model_file import LoadedModel
from service.config import ServiceConfig
from service.params import MAX_PROMPTS, MAX_STOP_SEQUENCES

TRAINING_KEYS = ("corpus", "train_words", "val_perplexity", "val_loss", "rnn_val_perplexity", "ngram_val_perplexity",
                 "trained_at", "seconds")
# what training/trainer.py records at each evaluation (the playground charts it)
EVALUATION_KEYS = ("train_words", "seconds", "val_loss", "val_perplexity", "learning_rate", "halved")


def json_safe(value: Any) -> Any:
    """A value that ``json`` writes as strict JSON; anything unusual becomes its string."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


# the /info keys read from the n-gram mixture (null without one), and the attribute each reads:
# ``ngram_weight`` is the RNN's share, under the name of the training flag that sets it
MIXTURE_FIELDS = {"ngram_order": "order", "ngram_weight": "rnn_weight", "cache_weight": "cache_weight",
                  "cache_size": "cache_size"}


def training_history(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The evaluations recorded during training, oldest first; empty for a file without them."""
    history = info.get("history")
    if not isinstance(history, list):
        return []
    return [{key: json_safe(entry.get(key)) for key in EVALUATION_KEYS} for entry in history if isinstance(entry, dict)]


def describe_model(loaded: LoadedModel, config: ServiceConfig, max_input_chars: int) -> dict[str, Any]:
    """The /info body: model shape, training facts and the request limits in force."""
    model = loaded.model
    description: dict[str, Any] = {
        "model_file": os.path.basename(config.model_path),
        "format_version": loaded.format_version,
        "vocabulary_size": len(loaded.vocab),
        "cell": model.cell,
        "hidden_size": model.hidden_size,
        "bptt_truncate": model.bptt_truncate,
        "softmax": model.softmax,
        "word_classes": None if model.classes is None else model.classes.n_classes,
        "parameter_count": int(model.parameter_count),
    }
    mixture = loaded.mixture
    description.update({key: None if mixture is None else getattr(mixture, name) for key, name in MIXTURE_FIELDS.items()})
    description.update({key: json_safe(loaded.info.get(key)) for key in TRAINING_KEYS})
    description["history"] = training_history(loaded.info)
    description.update(tgi_info(loaded, config))
    description["limits"] = {
        "max_new_tokens": config.max_new_tokens,
        "max_sentences": config.max_sentences,
        "max_request_words": config.max_request_words,
        "max_input_chars": max_input_chars,
        "max_body_bytes": config.max_body_bytes,
    }
    return description


def tgi_info(loaded: LoadedModel, config: ServiceConfig) -> dict[str, Any]:
    """The fields of TGI's Info that mean something here. ``max_total_tokens`` is the words one
    request may generate (RNNLM_MAX_REQUEST_WORDS; prompts are bounded in characters, not words),
    ``model_sha`` the pinned RNNLM_MODEL_SHA256 (null when none is pinned)."""
    return {
        "model_sha": config.model_sha256,
        "model_dtype": str(loaded.model.dtype),
        "model_device_type": "cpu",
        "model_pipeline_tag": "text-generation",
        "max_concurrent_requests": config.max_concurrent_requests,
        "max_best_of": config.max_sequences,
        "max_stop_sequences": MAX_STOP_SEQUENCES,
        "max_total_tokens": config.max_request_words,
        "max_batch_size": config.max_batch,
        "max_client_batch_size": MAX_PROMPTS,
        "router": "rnnlm",
        "version": version("rnnlm"),
    }


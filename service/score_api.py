"""POST /score: how likely the model finds a text, word by word and sentence by sentence."""
from __future__ import annotations

import math
from typing import Any

from flask import Response, jsonify

from service import checks
from service.errors import ApiError
from service.http_body import json_body
from service.scoring import SentenceScore, TextScore
from service.state import current_state

MAX_SCORE_CHARS = 10000


def score() -> Response:
    """POST /score ``{"inputs": "text"}``."""
    body = checks.json_object(json_body())
    checks.reject_unknown(body, ("inputs",), "field", "")
    if body.get("inputs") is None:
        raise ApiError(422, "inputs is required", field="inputs")
    text = checks.text("inputs", body["inputs"], MAX_SCORE_CHARS)
    state = current_state()
    release = state.admit()
    try:
        scored = state.scorer.score(text)
    finally:
        release()
    return jsonify(_score_json(scored))


def _finite(value: float) -> float | None:
    """JSON has no infinity: a perplexity too large for a float is null."""
    return value if math.isfinite(value) else None


def _sentence_json(sentence: SentenceScore) -> dict[str, Any]:
    return {
        "words": [{"word": w.word, "logprob": w.logprob, "oov": w.oov, "special": w.special} for w in sentence.words],
        "logprob": sentence.logprob,
        "perplexity": _finite(sentence.perplexity),
    }


def _score_json(scored: TextScore) -> dict[str, Any]:
    return {
        "sentences": [_sentence_json(s) for s in scored.sentences],
        "tokens": scored.tokens,
        "logprob": scored.logprob,
        "perplexity": _finite(scored.perplexity) if scored.tokens else None,
        "oov_words": scored.oov_words,
    }

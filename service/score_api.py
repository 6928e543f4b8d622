"""POST /score: how likely the model finds a text, word by word and sentence by sentence; and
POST /tokenize: a prompt's words as generation reads them (TGI's route)."""
from __future__ import annotations

import math
from typing import Any

from flask import Response

from service import checks
from service.errors import ApiError
from service.http_body import json_body
from models.scoring import SentenceScore, TextScore
from models.vocabulary import SENTENCE_END
from service.params import MAX_INPUT_CHARS
from service.prompt_tokens import prompt_tokens
from service.response import json_response
from service.state import current_state

MAX_SCORE_CHARS = 10000


def score() -> Response:
    """POST /score ``{"inputs": "text"}``."""
    body = checks.json_object(json_body())
    if body.get("inputs") is None:
        raise ApiError(422, "inputs is required", field="inputs")
    text = checks.text("inputs", body["inputs"], MAX_SCORE_CHARS)
    state = current_state()
    release = state.admit()
    try:
        scored = state.scorer.score(text)
    finally:
        release()
    return json_response(_score_json(scored))


def tokenize() -> Response:
    """POST /tokenize ``{"inputs": "text"}`` (TGI's body; its ``parameters`` are ignored): each
    word's vocabulary number, its text as sent, and where it starts and stops in it."""
    body = checks.json_object(json_body())
    text = checks.text("inputs", checks.field(body, "inputs", ""), MAX_INPUT_CHARS)
    return json_response([{"id": t.id, "text": t.text_in(text), "start": t.start, "stop": t.stop}
                    for t in prompt_tokens(current_state().generator.vocab, text)])


def _finite(value: float) -> float | None:
    """JSON has no infinity: a perplexity too large for a float is null."""
    return value if math.isfinite(value) else None


def _sentence_json(sentence: SentenceScore) -> dict[str, Any]:
    last = len(sentence.tokens) - 1
    words = [
        {"word": token, "logprob": logprob, "oov": unknown, "special": i == last and token == SENTENCE_END}
        for i, (token, logprob, unknown) in enumerate(zip(sentence.tokens, sentence.log_probs, sentence.unknown))
    ]
    return {"words": words, "logprob": sentence.log_likelihood, "perplexity": _finite(_perplexity(sentence))}


def _perplexity(scored: SentenceScore | TextScore) -> float:
    try:
        return scored.perplexity
    except OverflowError:  # JSON has no infinity: reported as null
        return math.inf


def _score_json(scored: TextScore) -> dict[str, Any]:
    oov = [token for s in scored.sentences for token, unknown in zip(s.tokens, s.unknown) if unknown]
    return {
        "sentences": [_sentence_json(s) for s in scored.sentences],
        "tokens": scored.tokens,
        "logprob": scored.log_likelihood,
        "perplexity": _finite(_perplexity(scored)) if scored.tokens else None,
        "oov_words": list(dict.fromkeys(oov)),
    }

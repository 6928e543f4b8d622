"""Checking a text-generation-inference request body (/generate, /generate_stream, POST /)
before anything runs.

Malformed JSON or a body that is not a JSON object is a 400; a field of the wrong type, out of
range or unknown is a 422 (TGI's status for validation errors). ``null`` for any field means
"use the default". Parameters TGI has and this model cannot honour (``watermark``, ``grammar``,
...) are accepted only as null or their neutral value, and refused by name otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.sampling import SamplingParams
from service import checks
from service.config import ServiceConfig
from service.errors import ApiError
from service.generation import MAX_SEED, GenerationRequest

MAX_INPUT_CHARS = 2000
DEFAULT_MAX_NEW_TOKENS = 50
MAX_STOP_SEQUENCES = 4
MAX_STOP_CHARS = 200
MAX_TOP_N_TOKENS = 5
MAX_REPETITION_PENALTY = 10.0

TOP_LEVEL_FIELDS = ("inputs", "parameters")
PARAMETER_NAMES = (
    "max_new_tokens", "num_sentences", "min_words", "temperature", "top_k", "top_p",
    "do_sample", "seed", "details", "stop", "repetition_penalty", "return_full_text",
    "top_n_tokens", "best_of",
)
# TGI's other parameters, with the only value each may take here besides null
NEUTRAL_PARAMETERS: dict[str, Any] = {
    "decoder_input_details": False, "watermark": False, "frequency_penalty": 0,
    "typical_p": 1, "truncate": None, "grammar": None, "adapter_id": None,
}


@dataclass(frozen=True)
class GenerateCall:
    """A checked TGI request: what to generate and how to answer."""

    request: GenerationRequest
    details: bool
    return_full_text: bool
    best_of: int
    stream: bool


def parse_generate(
    body: Any, config: ServiceConfig, *, stream: bool, full_text_default: bool, stream_field: bool = False
) -> GenerateCall:
    """Check a decoded TGI body against the API's types and the configured limits.

    ``stream`` is the route's own choice; ``stream_field`` lets the body choose instead (POST /).
    """
    body = checks.json_object(body)
    checks.reject_unknown(body, TOP_LEVEL_FIELDS + (("stream",) if stream_field else ()), "field", "")
    if stream_field:
        stream = checks.boolean("stream", checks.field(body, "stream", False))
    inputs = checks.text("inputs", checks.field(body, "inputs", ""), MAX_INPUT_CHARS)
    params = checks.field(body, "parameters", {})
    if not isinstance(params, dict):
        raise checks.wrong_type("parameters", "an object", params)
    checks.reject_unknown(params, PARAMETER_NAMES + tuple(NEUTRAL_PARAMETERS), "parameter", "parameters.")
    _reject_unsupported(params)

    def get(name: str, default: Any) -> Any:
        return checks.field(params, name, default)

    def name(short: str) -> str:
        return f"parameters.{short}"

    max_new_tokens = checks.integer(
        name("max_new_tokens"),
        get("max_new_tokens", min(DEFAULT_MAX_NEW_TOKENS, config.max_new_tokens)), 1, config.max_new_tokens,
    )
    num_sentences = checks.integer(name("num_sentences"), get("num_sentences", 1), 1, config.max_sentences)
    min_words = checks.integer(name("min_words"), get("min_words", 0), 0, max_new_tokens, high_name="max_new_tokens")
    temperature = checks.number(name("temperature"), get("temperature", 1.0), 100.0)
    top_k = checks.optional(get("top_k", None), lambda v: checks.integer(name("top_k"), v, 1, None))
    top_p = checks.optional(get("top_p", None), lambda v: checks.number(name("top_p"), v, 1.0))
    do_sample = checks.boolean(name("do_sample"), get("do_sample", True))
    seed = checks.optional(get("seed", None), lambda v: checks.integer(name("seed"), v, 0, MAX_SEED))
    details = checks.boolean(name("details"), get("details", False))
    stop = checks.stop_strings(name("stop"), get("stop", []), MAX_STOP_SEQUENCES, MAX_STOP_CHARS, allow_single=False)
    repetition_penalty = checks.number(
        name("repetition_penalty"), get("repetition_penalty", 1.0), MAX_REPETITION_PENALTY,
    )
    return_full_text = checks.boolean(name("return_full_text"), get("return_full_text", full_text_default))
    top_n_tokens = checks.integer(name("top_n_tokens"), get("top_n_tokens", 0), 0, MAX_TOP_N_TOKENS)
    best_of = checks.integer(name("best_of"), get("best_of", 1), 1, config.max_sequences)
    if best_of > 1 and not do_sample:
        raise ApiError(422, "parameters.best_of > 1 needs sampling: do_sample must not be false",
                       field=name("best_of"))
    if best_of > 1 and stream:
        raise ApiError(422, "parameters.best_of > 1 is not allowed when streaming", field=name("best_of"))
    checks.word_budget({name("best_of"): best_of, name("num_sentences"): num_sentences,
                        name("max_new_tokens"): max_new_tokens}, config.max_request_words)

    sampling = SamplingParams(
        max_new_tokens=max_new_tokens, min_words=min_words, temperature=temperature,
        top_k=top_k, top_p=top_p, do_sample=do_sample,
    )
    request = GenerationRequest(
        inputs, sampling, num_sentences, seed, repetition_penalty, stop, top_n_tokens,
    )
    return GenerateCall(request, details, return_full_text, best_of, stream)


def _reject_unsupported(params: dict) -> None:
    for key, neutral in NEUTRAL_PARAMETERS.items():
        value = params.get(key)
        if value is not None and not _is_neutral(value, neutral):
            allowed = "null" if neutral is None else f"null or {str(neutral).lower()}"
            raise ApiError(422, f"parameters.{key} is not supported by this model; it may only be {allowed}",
                           field=f"parameters.{key}")


def _is_neutral(value: Any, neutral: Any) -> bool:
    if neutral is None:
        return False
    if isinstance(neutral, bool):
        return value is neutral
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value == neutral

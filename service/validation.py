"""Checking a /generate request body before anything runs.

Malformed JSON or a body that is not a JSON object is a 400; a field of the wrong type, out of
range or unknown is a 422. Messages name the field (``parameters.top_p``) and say what was
expected, so a client can fix the request without reading the code. ``null`` for any field
means "use the default". Booleans are never accepted as numbers.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from models.sampling import SamplingParams
from service.config import ServiceConfig
from service.errors import ApiError
from service.generation import MAX_SEED, GenerationRequest

T = TypeVar("T")

MAX_INPUT_CHARS = 2000
DEFAULT_MAX_NEW_TOKENS = 50

TOP_LEVEL_FIELDS = ("inputs", "parameters")
PARAMETER_NAMES = (
    "max_new_tokens", "num_sentences", "min_words", "temperature", "top_k", "top_p",
    "do_sample", "seed", "details",
)


@dataclass(frozen=True)
class GenerateCall:
    """A checked /generate request: what to generate and whether to return details."""

    request: GenerationRequest
    details: bool


def decode_json_body(raw: bytes) -> Any:
    """The parsed body; a 400 for anything that is not strict JSON (NaN and Infinity included)."""

    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        return json.loads(raw, parse_constant=reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, absurd nesting
        raise ApiError(400, f"malformed JSON body: {_shorten(str(exc), 200)}") from None


def parse_generate(body: Any, config: ServiceConfig) -> GenerateCall:
    """Check a decoded /generate body against the API's types and the configured limits."""
    if not isinstance(body, dict):
        raise ApiError(400, f"the request body must be a JSON object, got {json_type(body)}")
    _reject_unknown(body, TOP_LEVEL_FIELDS, "field", "")
    inputs = _field(body, "inputs", "")
    if not isinstance(inputs, str):
        raise _wrong_type("inputs", "a string", inputs)
    if len(inputs) > MAX_INPUT_CHARS:
        raise ApiError(422, f"inputs must be at most {MAX_INPUT_CHARS} characters, got {len(inputs)}")
    params = _field(body, "parameters", {})
    if not isinstance(params, dict):
        raise _wrong_type("parameters", "an object", params)
    _reject_unknown(params, PARAMETER_NAMES, "parameter", "parameters.")

    def get(name: str, default: Any) -> Any:
        return _field(params, name, default)

    max_new_tokens = _integer(
        "max_new_tokens", get("max_new_tokens", min(DEFAULT_MAX_NEW_TOKENS, config.max_new_tokens)),
        1, config.max_new_tokens,
    )
    num_sentences = _integer("num_sentences", get("num_sentences", 1), 1, config.max_sentences)
    min_words = _integer("min_words", get("min_words", 0), 0, max_new_tokens, high_name="max_new_tokens")
    temperature = _number("temperature", get("temperature", 1.0), 100.0)
    top_k = _optional(get("top_k", None), lambda v: _integer("top_k", v, 1, None))
    top_p = _optional(get("top_p", None), lambda v: _number("top_p", v, 1.0))
    do_sample = _boolean("do_sample", get("do_sample", True))
    seed = _optional(get("seed", None), lambda v: _integer("seed", v, 0, MAX_SEED))
    details = _boolean("details", get("details", False))

    sampling = SamplingParams(
        max_new_tokens=max_new_tokens, min_words=min_words, temperature=temperature,
        top_k=top_k, top_p=top_p, do_sample=do_sample,
    )
    return GenerateCall(GenerationRequest(inputs, sampling, num_sentences, seed), details)


# ------------------------------------------------------------------------------ helpers
def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _field(obj: dict, name: str, default: Any) -> Any:
    value = obj.get(name)
    return default if value is None else value


def _reject_unknown(obj: dict, allowed: tuple[str, ...], kind: str, prefix: str) -> None:
    unknown = [name for name in obj if name not in allowed]
    if unknown:
        names = ", ".join(repr(_shorten(prefix + name)) for name in unknown)
        raise ApiError(422, f"unknown {kind}{'s' if len(unknown) > 1 else ''} {names}; "
                            f"allowed: {', '.join(allowed)}")


def _wrong_type(name: str, expected: str, value: Any) -> ApiError:
    return ApiError(422, f"{name} must be {expected}, got {json_type(value)}")


def _optional(value: Any, check: Callable[[Any], T]) -> T | None:
    return None if value is None else check(value)


def _integer(name: str, value: Any, low: int, high: int | None, high_name: str | None = None) -> int:
    field_name = f"parameters.{name}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(field_name, "an integer", value)
    if value < low or (high is not None and value > high):
        if high is None:
            wanted = f">= {low}"
        else:
            wanted = f"between {low} and " + (f"{high_name} ({high})" if high_name else str(high))
        raise ApiError(422, f"{field_name} must be {wanted}, got {_shorten(str(value))}")
    return value


def _number(name: str, value: Any, high: float) -> float:
    """A finite number in (0, high]."""
    field_name = f"parameters.{name}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _wrong_type(field_name, "a number", value)
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        number = math.inf
    if not (math.isfinite(number) and 0.0 < number <= high):
        raise ApiError(422, f"{field_name} must be > 0 and <= {high:g}, got {_shorten(str(value))}")
    return number


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _wrong_type(f"parameters.{name}", "true or false", value)
    return value

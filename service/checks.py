"""Checks of single JSON values, shared by every route's request parsing.

Each check returns the value or raises a 422 ApiError whose message names the field
(``parameters.top_p``) and says what was expected; the field is kept on the error too, so the
OpenAI routes can report it as ``param``. Booleans are never accepted as numbers.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, TypeVar

from service.errors import ApiError

T = TypeVar("T")


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


def shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# json.loads with any option builds a decoder on every call; this is the one it would build
_STRICT_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def decode_json_body(raw: bytes) -> Any:
    """The parsed body; a 400 for anything that is not strict JSON (NaN and Infinity included).
    Read as json.loads reads bytes: UTF-8, -16 or -32, told by its first bytes."""
    try:
        return _STRICT_DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, absurd nesting
        raise ApiError(400, f"malformed JSON body: {shorten(str(exc), 200)}") from None


def json_object(body: Any) -> dict:
    """The body itself if it is a JSON object; a 400 otherwise."""
    if not isinstance(body, dict):
        raise ApiError(400, f"the request body must be a JSON object, got {json_type(body)}")
    return body


def field(obj: dict, name: str, default: Any) -> Any:
    """``obj[name]``, or ``default`` when absent or null."""
    value = obj.get(name)
    return default if value is None else value


def wrong_type(name: str, expected: str, value: Any) -> ApiError:
    return ApiError(422, f"{name} must be {expected}, got {json_type(value)}", field=name)


def optional(value: Any, check: Callable[[Any], T]) -> T | None:
    return None if value is None else check(value)


def integer(name: str, value: Any, low: int, high: int | None, high_name: str | None = None) -> int:
    """An integer in [low, high] (no upper bound for None); ``high_name`` names a bound that
    comes from another field."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(name, "an integer", value)
    if value < low or (high is not None and value > high):
        if high is None:
            wanted = f">= {low}"
        else:
            wanted = f"between {low} and " + (f"{high_name} ({high})" if high_name else str(high))
        raise ApiError(422, f"{name} must be {wanted}, got {shorten(str(value))}", field=name)
    return value


def number(name: str, value: Any, high: float, low: float = 0.0, low_included: bool = False) -> float:
    """A finite number in (low, high], or [low, high] with ``low_included``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise wrong_type(name, "a number", value)
    try:
        result = float(value)
    except OverflowError:  # an integer too large for a float
        result = math.inf
    above_low = result >= low if low_included else result > low
    if not (math.isfinite(result) and above_low and result <= high):
        bound = ">=" if low_included else ">"
        raise ApiError(422, f"{name} must be {bound} {low:g} and <= {high:g}, got {shorten(str(value))}",
                       field=name)
    return result


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise wrong_type(name, "true or false", value)
    return value


def text(name: str, value: Any, max_chars: int) -> str:
    if not isinstance(value, str):
        raise wrong_type(name, "a string", value)
    if len(value) > max_chars:
        raise ApiError(422, f"{name} must be at most {max_chars} characters, got {len(value)}", field=name)
    return value


def word_budget(factors: dict[str, int], budget: int) -> int:
    """Each sequence's share of the request's ``budget`` of words (RNNLM_MAX_REQUEST_WORDS): a
    sequence stops when it has generated its share, so a client's large length (LangChain's 512,
    OpenAI's batches of 20 prompts) is taken and still bounded. ``factors`` are what the request
    must generate, the number of sequences first (then sentences, words each a sentence must
    have): a 422 naming the last factor when their product is over the budget, or when the
    sequences alone leave each less than one word, before any word is generated."""
    total = math.prod(factors.values())
    sequences = next(iter(factors.values()))
    if total > budget or sequences > budget:
        asked = " x ".join(f"{name} {value}" for name, value in factors.items())
        raise ApiError(422, f"this request must generate {asked} = {total:,} words, over the limit of {budget:,} "
                            "words a request (RNNLM_MAX_REQUEST_WORDS); ask for fewer", field=list(factors)[-1])
    return budget // sequences


def stop_strings(name: str, value: Any, max_count: int, max_chars: int, allow_single: bool) -> tuple[str, ...]:
    """Up to ``max_count`` non-empty strings (a bare string too, with ``allow_single``)."""
    if allow_single and isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise wrong_type(name, "a string or an array of strings" if allow_single else "an array of strings", value)
    if len(value) > max_count:
        raise ApiError(422, f"{name} must have at most {max_count} strings, got {len(value)}", field=name)
    for item in value:
        if not isinstance(item, str):
            raise wrong_type(f"{name} items", "strings", item)
        if not item or len(item) > max_chars:
            raise ApiError(422, f"{name} items must have 1 to {max_chars} characters, got {len(item)}", field=name)
    return tuple(value)

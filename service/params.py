"""The request fields of both API families, declared once.

Each ``FieldSpec`` holds a field's JSON type, bounds, default and description. ``parse_fields``
checks a body against a tuple of them and ``object_schema`` writes the OpenAPI schema of the
same tuple, so a limit or a default lives here and nowhere else. The sampling fields both
families share (seed, top-k, top-p, repetition penalty, stop strings, ...) are one spec each;
a family only renames one or changes its default (``variant``), and both families' bodies end
up as the same ``GenerationRequest``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from service import checks
from service.config import ServiceConfig
from service.errors import ApiError
from service.generation import MAX_SEED

MAX_INPUT_CHARS = 2000
MAX_STOP_SEQUENCES = 4
MAX_STOP_CHARS = 200
MAX_TOP_N_TOKENS = 5
MAX_REPETITION_PENALTY = 10.0
MAX_USER_CHARS = 256

# a bound or default that is a function of the running configuration (RNNLM_MAX_NEW_TOKENS, ...)
Configured = Callable[[ServiceConfig], Any]
_JSON_TYPES = {"integer": "integer", "number": "number", "boolean": "boolean", "string": "string"}


def _resolve(value: Any, config: ServiceConfig) -> Any:
    return value(config) if callable(value) else value


@dataclass(frozen=True)
class FieldSpec:
    """One request field. ``kind`` is integer, number, boolean, string, stop (an array of
    strings; ``single`` allows a bare string too), unsupported (a parameter of the API this
    model cannot honour: only null or ``neutral``), or raw (checked by ``check``, given the value,
    the configuration and the fields parsed before it; ``schema`` documents it). ``default`` None means the field has none (absent stays None).
    Numbers lie in (minimum, maximum], or [minimum, maximum] with ``minimum_included``;
    integers in [minimum, maximum]; ``maximum_field`` bounds an integer by another field's
    value (checked after it)."""

    name: str
    kind: str
    doc: str = ""
    default: Any = None
    minimum: Any = None
    maximum: Any = None
    minimum_included: bool = False
    maximum_field: str | None = None
    single: bool = False
    neutral: Any = None
    schema: dict[str, Any] | Configured | None = None
    check: Callable[[Any, ServiceConfig, dict[str, Any]], Any] | None = None

    def variant(self, **changes: Any) -> FieldSpec:
        """The same field as another family spells or defaults it."""
        return replace(self, **changes)

    def parse(self, obj: dict, config: ServiceConfig, prefix: str, parsed: dict[str, Any]) -> Any:
        """The checked value of this field in ``obj`` (its default when absent or null)."""
        name, value = prefix + self.name, obj.get(self.name)
        if self.kind == "raw":
            return value if self.check is None else self.check(value, config, parsed)
        if self.kind == "unsupported":
            if value is not None and not _is_neutral(value, self.neutral):
                allowed = "null" if self.neutral is None else f"null or {_json_literal(self.neutral)}"
                raise ApiError(422, f"{name} is not supported by this model; it may only be {allowed}", field=name)
            return None
        if value is None:
            return _resolve(self.default, config)
        low, high = _resolve(self.minimum, config), _resolve(self.maximum, config)
        if self.kind == "integer":
            if self.maximum_field is not None:
                return checks.integer(name, value, low, parsed[self.maximum_field], high_name=self.maximum_field)
            return checks.integer(name, value, low, high)
        if self.kind == "number":
            return checks.number(name, value, high, low, low_included=self.minimum_included)
        if self.kind == "boolean":
            return checks.boolean(name, value)
        if self.kind == "string":
            return checks.text(name, value, high)
        if self.kind == "stop":
            return checks.stop_strings(name, value, MAX_STOP_SEQUENCES, MAX_STOP_CHARS, allow_single=self.single)
        raise ValueError(f"unknown field kind {self.kind!r}")

    def json_schema(self, config: ServiceConfig) -> dict[str, Any]:
        """This field's JSON Schema (null always allowed: it means the default)."""
        if self.schema is not None:
            schema = dict(_resolve(self.schema, config))
        elif self.kind == "unsupported":
            schema = {"enum": [None] if self.neutral is None else [None, self.neutral]}
        elif self.kind == "stop":
            items = {"type": "string", "minLength": 1, "maxLength": MAX_STOP_CHARS}
            listed = {"type": "array", "maxItems": MAX_STOP_SEQUENCES, "items": items}
            schema = ({"oneOf": [items, listed, {"type": "null"}]} if self.single
                      else {**listed, "type": ["array", "null"]})
        else:
            schema = {"type": [_JSON_TYPES[self.kind], "null"]}
            low, high = _resolve(self.minimum, config), _resolve(self.maximum, config)
            if self.kind == "string":
                schema["maxLength"] = high
            elif low is not None:
                excluded = self.kind == "number" and not self.minimum_included
                schema["exclusiveMinimum" if excluded else "minimum"] = low
            if high is not None and self.kind in ("integer", "number"):
                schema["maximum"] = high
            default = _resolve(self.default, config)
            if default is not None:
                schema["default"] = default
        if self.doc:
            schema["description"] = self.doc
        return schema


def _is_neutral(value: Any, neutral: Any) -> bool:
    if neutral is None:
        return False
    if isinstance(neutral, bool):
        return value is neutral
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value == neutral


def _json_literal(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def parse_fields(obj: dict, specs: Sequence[FieldSpec], config: ServiceConfig, *, kind: str = "field",
                 prefix: str = "") -> dict[str, Any]:
    """Every spec's checked value, by name; unknown names are a 422 naming what is allowed.
    Unsupported parameters are checked first, so their message is the one a client sees."""
    checks.reject_unknown(obj, [spec.name for spec in specs], kind, prefix)
    parsed: dict[str, Any] = {}
    for spec in sorted(specs, key=lambda s: s.kind != "unsupported"):
        parsed[spec.name] = spec.parse(obj, config, prefix, parsed)
    return parsed


def object_schema(specs: Sequence[FieldSpec], config: ServiceConfig, required: Sequence[str] = ()) -> dict[str, Any]:
    """A closed JSON Schema object of these fields."""
    return {"type": "object", "properties": {spec.name: spec.json_schema(config) for spec in specs},
            "required": list(required), "additionalProperties": False}


# ------------------------------------------------------------- the fields both families share
SEED = FieldSpec("seed", "integer", minimum=0, maximum=MAX_SEED,
                 doc="Seed of the request's random generator; the same seed gives the same text")
TOP_K = FieldSpec("top_k", "integer", minimum=1, doc="Draw from the k likeliest words only")
TOP_P = FieldSpec("top_p", "number", minimum=0, maximum=1.0,
                  doc="Draw from the likeliest words whose probabilities add up to top_p")
REPETITION_PENALTY = FieldSpec(
    "repetition_penalty", "number", default=1.0, minimum=0, maximum=MAX_REPETITION_PENALTY,
    doc="Multiplies the log-probability of words already in the sentence",
)
STOP = FieldSpec("stop", "stop", default=(), doc="Strings that end the generation where they first appear in "
                                                  "the new text; cut from it")
TOP_N = FieldSpec("top_n_tokens", "integer", default=0, minimum=0, maximum=MAX_TOP_N_TOKENS,
                  doc="How many likeliest alternatives to report at every step")
MAX_NEW_TOKENS = FieldSpec(
    "max_new_tokens", "integer", default=lambda c: min(50, c.max_new_tokens), minimum=1,
    maximum=lambda c: c.max_new_tokens, doc="Cap on the new words of each sentence",
)
SEQUENCES = FieldSpec("best_of", "integer", default=1, minimum=1, maximum=lambda c: c.max_sequences,
                      doc="Sequences to sample (seeds seed, seed+1, ...)")
INPUTS = FieldSpec("inputs", "string", default="", maximum=MAX_INPUT_CHARS,
                   doc="The words the first sentence starts with")

# ------------------------------------------------------------------ text-generation-inference
TGI_PARAMETERS = (
    MAX_NEW_TOKENS,
    FieldSpec("num_sentences", "integer", default=1, minimum=1, maximum=lambda c: c.max_sentences),
    FieldSpec("min_words", "integer", default=0, minimum=0, maximum_field="max_new_tokens",
              doc="Words per sentence (starting words included) before it may end; at most max_new_tokens"),
    FieldSpec("temperature", "number", default=1.0, minimum=0, maximum=100.0),
    TOP_K,
    TOP_P,
    FieldSpec("do_sample", "boolean", default=True),
    SEED,
    FieldSpec("details", "boolean", default=False),
    STOP.variant(doc=STOP.doc + " (finish_reason stop_sequence)"),
    REPETITION_PENALTY,
    FieldSpec("return_full_text", "boolean", doc="Prepend the inputs to generated_text; default false, true on POST /"),
    TOP_N,
    SEQUENCES.variant(doc=SEQUENCES.doc + "; the one with the highest mean token log-probability is returned. "
                                          "Not with streaming or do_sample false"),
    # TGI's other parameters, with the only value each may take here besides null
    *(FieldSpec(name, "unsupported", neutral=neutral, doc="TGI parameter this model does not support")
      for name, neutral in (("decoder_input_details", False), ("watermark", False), ("frequency_penalty", 0),
                            ("typical_p", 1), ("truncate", None), ("grammar", None), ("adapter_id", None))),
)
TGI_BODY = (INPUTS.variant(schema={"type": ["string", "null"], "maxLength": MAX_INPUT_CHARS}),
            FieldSpec("parameters", "raw", schema={"oneOf": [{"$ref": "#/components/schemas/GenerateParameters"},
                                                             {"type": "null"}]}))
TGI_STREAM_FIELD = FieldSpec("stream", "boolean", default=False)

# ------------------------------------------------------------------------- OpenAI completions
def model_not_found(model: str, field: str, config: ServiceConfig) -> ApiError:
    return ApiError(404, f"The model {checks.shorten(model)!r} does not exist; this service serves "
                         f"{config.model_id!r}", error_type="not_found", field=field)


def _model(value: Any, config: ServiceConfig, parsed: dict[str, Any]) -> str:
    if value is None:
        raise ApiError(422, "model is required", field="model")
    model = checks.text("model", value, 200)
    if model != config.model_id:
        raise model_not_found(model, "model", config)
    return model


def _prompts(value: Any, config: ServiceConfig, parsed: dict[str, Any]) -> list[str]:
    if value is None or isinstance(value, str):
        return [checks.text("prompt", "" if value is None else value, MAX_INPUT_CHARS)]
    if not isinstance(value, list) or not value:
        raise ApiError(422, "prompt must be a string or a non-empty array of strings "
                            f"(token arrays are not supported), got {checks.json_type(value)}", field="prompt")
    return [checks.text("prompt", item, MAX_INPUT_CHARS) for item in value]


def _choices(value: Any, config: ServiceConfig, parsed: dict[str, Any]) -> int:
    n = checks.integer("n", 1 if value is None else value, 1, config.max_sequences)
    if n * len(parsed["prompt"]) > config.max_sequences:
        raise ApiError(422, f"n times the number of prompts must be at most {config.max_sequences}, "
                            f"got {n * len(parsed['prompt'])}", field="n")
    return n


def _include_usage(options: Any, config: ServiceConfig, parsed: dict[str, Any]) -> bool:
    if options is None:
        return False
    if not parsed["stream"]:
        raise ApiError(422, "stream_options is only allowed when stream is true", field="stream_options")
    if not isinstance(options, dict):
        raise checks.wrong_type("stream_options", "an object", options)
    checks.reject_unknown(options, ("include_usage",), "field", "stream_options.")
    return checks.boolean("stream_options.include_usage", checks.field(options, "include_usage", False))


_PROMPT = {"type": "string", "maxLength": MAX_INPUT_CHARS}
OPENAI_COMPLETION = (
    FieldSpec("model", "raw", check=_model, schema=lambda c: {"type": "string", "const": c.model_id}),
    FieldSpec("prompt", "raw", check=_prompts, schema={
        "oneOf": [_PROMPT, {"type": "array", "minItems": 1, "items": _PROMPT}, {"type": "null"}]}),
    FieldSpec("n", "raw", check=_choices, schema=lambda c: {
        "type": ["integer", "null"], "minimum": 1, "maximum": c.max_sequences, "default": 1,
        "description": f"Choices per prompt (seeds seed, seed+1, ...); n x prompts <= {c.max_sequences}"}),
    MAX_NEW_TOKENS.variant(name="max_tokens", default=lambda c: min(16, c.max_new_tokens)),  # OpenAI's default
    FieldSpec("temperature", "number", default=1.0, minimum=0, maximum=2.0, minimum_included=True,
              doc="0 means greedy"),
    TOP_P.variant(default=1.0),
    TOP_K.variant(doc="Extension (as vLLM's)"),
    REPETITION_PENALTY.variant(doc="Extension (as vLLM's)"),
    STOP.variant(single=True),
    SEED,
    TOP_N.variant(name="logprobs", default=None, doc="Report each word's log-probability and this many "
                                                     "likeliest alternatives"),
    FieldSpec("echo", "boolean", default=False),
    FieldSpec("stream", "boolean", default=False),
    FieldSpec("stream_options", "raw", check=_include_usage, schema={"oneOf": [
        {"type": "object", "properties": {"include_usage": {"type": ["boolean", "null"]}}, "required": [],
         "additionalProperties": False}, {"type": "null"}]}),
    FieldSpec("user", "string", maximum=MAX_USER_CHARS),
    # OpenAI's other fields, with the only value each may take here besides null
    FieldSpec("presence_penalty", "unsupported", neutral=0, doc="Not supported"),
    FieldSpec("frequency_penalty", "unsupported", neutral=0, doc="Not supported"),
    FieldSpec("best_of", "unsupported", neutral=1, doc="Not supported (use n)"),
    FieldSpec("suffix", "unsupported", doc="Not supported"),
)

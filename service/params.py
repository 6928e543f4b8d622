"""The request fields of both API families, declared once.

Each ``FieldSpec`` holds a field's JSON type, bounds, default and description. ``parse_fields``
checks a body against a tuple of them and ``object_schema`` writes the OpenAPI schema of the
same tuple, so a limit or a default lives here and nowhere else. The sampling fields both
families share (seed, top-k, top-p, repetition penalty, stop strings, ...) are one spec each;
a family only renames one or changes its default (``variant``), and both families' bodies end
up as the same ``GenerationRequest``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from service import checks
from service.config import ServiceConfig
from service.errors import ApiError
from service.generation import MAX_SEED

logger = logging.getLogger(__name__)

MAX_INPUT_CHARS = 2000
MAX_STOP_SEQUENCES = 4
MAX_STOP_CHARS = 200
MAX_TOP_N_TOKENS = 5
MAX_REPETITION_PENALTY = 10.0
MAX_USER_CHARS = 256
# the largest length a client may ask for (TGI's u32): the work is bounded by the word budget
MAX_TOKENS_ASKED = 2**32 - 1
MAX_PENALTY = 2.0  # OpenAI's bound on frequency_penalty and presence_penalty
MAX_LOGIT_BIAS = 100.0  # OpenAI's bound on a logit_bias value
# prompts in one OpenAI completions request (LangChain batches 20), and choices in all (prompts x n)
MAX_PROMPTS = 32

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
    """Every spec's checked value, by name. Unknown names are ignored, as TGI and OpenAI ignore
    them (a field a client adds later must not break it), and logged once at debug level.
    Unsupported parameters are checked first, so their message is the one a client sees."""
    layout = _layout(specs, config)
    for name in obj:
        if name not in layout.known:
            _note_ignored(kind, prefix + name)
    parsed: dict[str, Any] = {}
    defaults = layout.defaults
    for spec in layout.order:
        name = spec.name
        if name in defaults and obj.get(name) is None:
            parsed[name] = defaults[name]
        else:
            parsed[name] = spec.parse(obj, config, prefix, parsed)
    return parsed


@dataclass(frozen=True)
class _Layout:
    """What ``parse_fields`` needs of a tuple of specs, worked out once per tuple and configuration:
    a request names a few of twenty-odd fields, and the others take their defaults."""

    known: frozenset[str]
    order: tuple[FieldSpec, ...]  # the unsupported fields first
    defaults: dict[str, Any]  # each field's value when absent or null, but the raw ones' (their check decides)


_LAYOUTS: dict[tuple[int, int], tuple[Sequence[FieldSpec], ServiceConfig, _Layout]] = {}
_MAX_LAYOUTS = 64  # the field tuples are module constants and a process has one configuration


def _layout(specs: Sequence[FieldSpec], config: ServiceConfig) -> _Layout:
    entry = _LAYOUTS.get((id(specs), id(config)))
    if entry is not None and entry[0] is specs and entry[1] is config:
        return entry[2]
    layout = _Layout(
        known=frozenset(spec.name for spec in specs),
        order=tuple(sorted(specs, key=lambda spec: spec.kind != "unsupported")),
        defaults={spec.name: None if spec.kind == "unsupported" else _resolve(spec.default, config)
                  for spec in specs if spec.kind != "raw"},
    )
    if len(_LAYOUTS) < _MAX_LAYOUTS:  # (holding specs and config keeps their ids from being reused)
        _LAYOUTS[(id(specs), id(config))] = (specs, config, layout)
    return layout


_IGNORED_LOGGED: set[str] = set()
_MAX_IGNORED_LOGGED = 256  # the names a client invents are not kept without bound


def _note_ignored(kind: str, name: str) -> None:
    if name not in _IGNORED_LOGGED and len(_IGNORED_LOGGED) < _MAX_IGNORED_LOGGED:
        _IGNORED_LOGGED.add(name)
        logger.debug("ignoring the unknown %s %r (logged once)", kind, checks.shorten(name))


def object_schema(specs: Sequence[FieldSpec], config: ServiceConfig, required: Sequence[str] = ()) -> dict[str, Any]:
    """A JSON Schema object of these fields; other fields are allowed and ignored."""
    return {"type": "object", "properties": {spec.name: spec.json_schema(config) for spec in specs},
            "required": list(required), "additionalProperties": True}


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
    "max_new_tokens", "integer", default=lambda c: min(50, c.max_new_tokens), minimum=1, maximum=MAX_TOKENS_ASKED,
    doc="Cap on the new words of each sentence. Any value is taken: a sentence is also cut at "
        "RNNLM_MAX_NEW_TOKENS words, and a request's sequences share RNNLM_MAX_REQUEST_WORDS words",
)
TYPICAL_P = FieldSpec("typical_p", "number", minimum=0, maximum=1.0,
                      doc="Locally typical sampling: draw from the words whose surprise is closest to the "
                          "distribution's entropy, up to this probability mass")
FREQUENCY_PENALTY = FieldSpec("frequency_penalty", "number", default=0.0, minimum=-MAX_PENALTY, maximum=MAX_PENALTY,
                              minimum_included=True,
                              doc="Subtracted from a word's score once per time the sequence has generated it")
PRESENCE_PENALTY = FieldSpec("presence_penalty", "number", default=0.0, minimum=-MAX_PENALTY, maximum=MAX_PENALTY,
                             minimum_included=True,
                             doc="Subtracted from a word's score if the sequence has generated it")
SEQUENCES = FieldSpec("best_of", "integer", default=1, minimum=1, maximum=lambda c: c.max_sequences,
                      doc="Sequences to sample (seeds seed, seed+1, ...)")
INPUTS = FieldSpec("inputs", "string", default="", maximum=MAX_INPUT_CHARS,
                   doc="The words the first sentence starts with")

# ------------------------------------------------------------------ text-generation-inference
TGI_PARAMETERS = (
    MAX_NEW_TOKENS,
    FieldSpec("num_sentences", "integer", default=1, minimum=1, maximum=lambda c: c.max_sentences),
    FieldSpec("min_words", "integer", default=0, minimum=0, maximum_field="max_new_tokens",
              doc="Words per sentence (starting words included) before it may end; at most max_new_tokens "
                  "(a sentence cut at RNNLM_MAX_NEW_TOKENS words ends there)"),
    FieldSpec("temperature", "number", default=1.0, minimum=0, maximum=100.0),
    TOP_K,
    TOP_P,
    TYPICAL_P,
    FieldSpec("do_sample", "boolean", default=False,
              doc="Sample rather than choose the likeliest word; as TGI, a temperature other than 1, top_k, "
                  "top_p < 1 or typical_p < 1 samples too"),
    FREQUENCY_PENALTY,
    SEED,
    FieldSpec("details", "boolean", default=False),
    FieldSpec("decoder_input_details", "boolean", default=False,
              doc="With details: the prompt's words scored in details.prefill (as POST /score scores them)"),
    STOP.variant(doc=STOP.doc + " (finish_reason stop_sequence)"),
    REPETITION_PENALTY,
    FieldSpec("return_full_text", "boolean", doc="Prepend the inputs to generated_text; default false, true on POST /"),
    TOP_N,
    SEQUENCES.variant(doc=SEQUENCES.doc + "; the one with the highest mean token log-probability is returned. "
                                          "Not with streaming or do_sample false"),
    # TGI's other parameters, with the only value each may take here besides null
    *(FieldSpec(name, "unsupported", neutral=neutral, doc="TGI parameter this model does not support")
      for name, neutral in (("watermark", False), ("truncate", None),
                            ("grammar", None), ("adapter_id", None))),
)
TGI_BODY = (INPUTS.variant(schema={"type": ["string", "null"], "maxLength": MAX_INPUT_CHARS}),
            FieldSpec("parameters", "raw", schema={"oneOf": [{"$ref": "#/components/schemas/GenerateParameters"},
                                                             {"type": "null"}]}))
TGI_STREAM_FIELD = FieldSpec("stream", "boolean", default=False)
TGI_COMPAT_BODY = TGI_BODY + (TGI_STREAM_FIELD,)  # POST /, where the body may ask for a stream

# ------------------------------------------------------------------------- OpenAI completions
def model_not_found(model: str, field: str, config: ServiceConfig) -> ApiError:
    return ApiError(404, f"The model {checks.shorten(model)!r} does not exist; this service serves "
                         f"{config.model_id!r}", error_type="not_found", field=field)


def _model(value: Any, config: ServiceConfig, parsed: dict[str, Any]) -> str:
    """The served model's name; absent or null means it (as vLLM and TGI take a request without
    one: this service serves one model), another name is a 404 as OpenAI's."""
    if value is None:
        return config.model_id
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
    if len(value) > MAX_PROMPTS:
        raise ApiError(422, f"prompt must have at most {MAX_PROMPTS} strings, got {len(value)}", field="prompt")
    return [checks.text("prompt", item, MAX_INPUT_CHARS) for item in value]


def choices_per_prompt(value: Any, config: ServiceConfig, parsed: dict[str, Any]) -> int:
    """``n``: at most RNNLM_MAX_SEQUENCES, and at most MAX_PROMPTS choices in all."""
    n = checks.integer("n", 1 if value is None else value, 1, config.max_sequences)
    prompts = len(parsed.get("prompt", [""]))
    if n * prompts > MAX_PROMPTS:
        raise ApiError(422, f"n times the number of prompts must be at most {MAX_PROMPTS}, got {n * prompts}",
                       field="n")
    return n


def _logit_bias(value: Any, config: ServiceConfig, parsed: dict[str, Any]) -> tuple[tuple[int, float], ...]:
    """OpenAI's map of token id (a string) to a bias in [-100, 100]; the ids are the vocabulary's
    word numbers (GET /tokenize shows them), checked against its size by the route."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise checks.wrong_type("logit_bias", "an object", value)
    bias = []
    for key, amount in value.items():
        if not (isinstance(key, str) and key.isdigit() and len(key) < 10):
            raise ApiError(422, f"logit_bias keys must be word ids (non-negative integers), got "
                                f"{checks.shorten(repr(key))}", field="logit_bias")
        bias.append((int(key), checks.number(f"logit_bias[{key}]", amount, MAX_LOGIT_BIAS, -MAX_LOGIT_BIAS,
                                             low_included=True)))
    return tuple(bias)


def _include_usage(options: Any, config: ServiceConfig, parsed: dict[str, Any]) -> bool:
    if options is None:
        return False
    if not parsed["stream"]:
        raise ApiError(422, "stream_options is only allowed when stream is true", field="stream_options")
    if not isinstance(options, dict):
        raise checks.wrong_type("stream_options", "an object", options)
    return checks.boolean("stream_options.include_usage", checks.field(options, "include_usage", False))


LOGIT_BIAS = FieldSpec("logit_bias", "raw", check=_logit_bias, schema={
    "type": ["object", "null"], "propertyNames": {"pattern": "^[0-9]{1,9}$"},
    "additionalProperties": {"type": "number", "minimum": -MAX_LOGIT_BIAS, "maximum": MAX_LOGIT_BIAS},
    "description": "Added to the score of each word id (the vocabulary's numbering, as GET /tokenize shows it) "
                   "before the draw; -100 all but bans a word"})
_PROMPT = {"type": "string", "maxLength": MAX_INPUT_CHARS}
OPENAI_COMPLETION = (
    FieldSpec("model", "raw", check=_model, schema=lambda c: {"enum": [c.model_id, None]}),
    FieldSpec("prompt", "raw", check=_prompts, schema={
        "oneOf": [_PROMPT, {"type": "array", "minItems": 1, "maxItems": MAX_PROMPTS, "items": _PROMPT},
                  {"type": "null"}]}),
    FieldSpec("n", "raw", check=choices_per_prompt, schema=lambda c: {
        "type": ["integer", "null"], "minimum": 1, "maximum": c.max_sequences, "default": 1,
        "description": f"Choices per prompt (seeds seed, seed+1, ...); n x prompts <= {MAX_PROMPTS}"}),
    # OpenAI's default; 0 only with echo (score the prompt, generate nothing)
    MAX_NEW_TOKENS.variant(name="max_tokens", default=lambda c: min(16, c.max_new_tokens), minimum=0,
                           doc=MAX_NEW_TOKENS.doc + "; 0 only with echo"),
    FieldSpec("temperature", "number", default=1.0, minimum=0, maximum=2.0, minimum_included=True,
              doc="0 means greedy"),
    TOP_P.variant(default=1.0),
    TOP_K.variant(doc="Extension (as vLLM's)"),
    REPETITION_PENALTY.variant(doc="Extension (as vLLM's)"),
    STOP.variant(single=True),
    SEED,
    TOP_N.variant(name="logprobs", default=None, doc="Report each word's log-probability and this many "
                                                     "likeliest alternatives"),
    FieldSpec("echo", "boolean", default=False, doc="Return the prompt before the new text; with logprobs, the "
                                                    "prompt's words are scored too (as POST /score scores them)"),
    FieldSpec("stream", "boolean", default=False),
    FieldSpec("stream_options", "raw", check=_include_usage, schema={"oneOf": [
        {"type": "object", "properties": {"include_usage": {"type": ["boolean", "null"]}}, "required": [],
         "additionalProperties": False}, {"type": "null"}]}),
    FieldSpec("user", "string", maximum=MAX_USER_CHARS),
    PRESENCE_PENALTY,
    FREQUENCY_PENALTY,
    LOGIT_BIAS,
    # OpenAI's other fields, with the only value each may take here besides null
    FieldSpec("best_of", "unsupported", neutral=1, doc="Not supported (use n)"),
    FieldSpec("suffix", "unsupported", doc="Not supported"),
)
_OPENAI_SHARED = {spec.name: spec for spec in OPENAI_COMPLETION}


# ------------------------------------------------------------------------------- OpenAI chat
MAX_MESSAGES = 256
CHAT_ROLES = ("system", "developer", "user", "assistant", "tool", "function")


def _message_text(content: Any, name: str) -> str:
    """A message's text: a string, or an array of text parts (joined); null is empty."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise checks.wrong_type(name, "a string or an array of text parts", content)
    texts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise ApiError(422, f"{name} parts must be text parts ({{\"type\": \"text\", \"text\": ...}}): "
                                "this model reads text only", field=name)
        texts.append(part["text"])
    return "\n".join(texts)


def _last_user_message(value: Any, config: ServiceConfig, parsed: dict[str, Any]) -> str:
    """The text of the last user message: the chat template's prompt (the model knows no turns)."""
    if not isinstance(value, list) or not value:
        raise ApiError(422, "messages must be a non-empty array of messages", field="messages")
    if len(value) > MAX_MESSAGES:
        raise ApiError(422, f"messages must have at most {MAX_MESSAGES} messages, got {len(value)}", field="messages")
    last_user = None
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise checks.wrong_type(f"messages[{i}]", "an object", message)
        role = message.get("role")
        if role not in CHAT_ROLES:
            raise ApiError(422, f"messages[{i}].role must be one of {', '.join(CHAT_ROLES)}", field="messages")
        text = _message_text(message.get("content"), f"messages[{i}].content")
        if role == "user":
            last_user = text
    if last_user is None:
        raise ApiError(422, "messages must include a user message: it is the prompt", field="messages")
    return checks.text("messages: the last user message", last_user, MAX_INPUT_CHARS)


def _top_logprobs(value: Any, config: ServiceConfig, parsed: dict[str, Any]) -> int:
    if value is None:
        return 0
    if not parsed["logprobs"]:
        raise ApiError(422, "top_logprobs needs logprobs true", field="top_logprobs")
    return checks.integer("top_logprobs", value, 0, MAX_TOP_N_TOKENS)


def _chat_max_tokens(value: Any, config: ServiceConfig, parsed: dict[str, Any]) -> int:
    """max_completion_tokens, else the older max_tokens, else the sentence cap."""
    chosen = parsed["max_tokens"] if value is None else value
    if chosen is None:
        return config.max_new_tokens
    return checks.integer("max_completion_tokens" if value is not None else "max_tokens", chosen, 1, MAX_TOKENS_ASKED)


_MESSAGE = {"type": "object", "properties": {
    "role": {"enum": list(CHAT_ROLES)},
    "content": {"oneOf": [{"type": "string"}, {"type": "null"}, {"type": "array", "items": {
        "type": "object", "properties": {"type": {"const": "text"}, "text": {"type": "string"}},
        "required": ["type", "text"]}}]}}, "required": ["role"]}
OPENAI_CHAT = (
    FieldSpec("model", "string", maximum=200, doc="Not checked, as TGI's chat does not check it: this service "
                                                  "serves one model, and huggingface_hub sends a placeholder"),
    FieldSpec("messages", "raw", check=_last_user_message, schema={
        "type": "array", "minItems": 1, "maxItems": MAX_MESSAGES, "items": _MESSAGE,
        "description": "The prompt is the last user message (its last sentence if it is unfinished, else a new "
                       "sentence is started); the other messages are read for their shape only"}),
    FieldSpec("n", "raw", check=choices_per_prompt, schema=lambda c: {
        "type": ["integer", "null"], "minimum": 1, "maximum": c.max_sequences, "default": 1,
        "description": "Choices (seeds seed, seed+1, ...)"}),
    FieldSpec("max_tokens", "integer", minimum=1, maximum=MAX_TOKENS_ASKED, doc="Older name of max_completion_tokens"),
    FieldSpec("max_completion_tokens", "raw", check=_chat_max_tokens, schema=lambda c: {
        "type": ["integer", "null"], "minimum": 1, "maximum": MAX_TOKENS_ASKED,
        "description": f"Cap on the answer's words; default and sentence cap RNNLM_MAX_NEW_TOKENS ({c.max_new_tokens})"}),
    _OPENAI_SHARED["temperature"],
    _OPENAI_SHARED["top_p"],
    _OPENAI_SHARED["top_k"],
    _OPENAI_SHARED["repetition_penalty"],
    _OPENAI_SHARED["stop"],
    SEED,
    FieldSpec("logprobs", "boolean", default=False, doc="Report each word's log-probability"),
    FieldSpec("top_logprobs", "raw", check=_top_logprobs, schema={
        "type": ["integer", "null"], "minimum": 0, "maximum": MAX_TOP_N_TOKENS,
        "description": "With logprobs: this many likeliest alternatives at every step"}),
    _OPENAI_SHARED["stream"],
    _OPENAI_SHARED["stream_options"],
    _OPENAI_SHARED["user"],
    PRESENCE_PENALTY,
    FREQUENCY_PENALTY,
    LOGIT_BIAS,
    # OpenAI's features a word model cannot honour, with the only value each may take here
    *(FieldSpec(name, "unsupported", doc="Not supported") for name in
      ("tools", "tool_choice", "functions", "function_call", "response_format", "audio", "prediction")),
)

"""OpenAI sampling, length, stop, response_format and reasoning controls -> Gemini generationConfig."""

from __future__ import annotations

import logging
from typing import Any

from translators.gemini.exceptions import TranslationError
from translators.gemini.schema import clean_schema
from translators.gemini.thinking import thinking_config

log = logging.getLogger(__name__)


def _number(body: dict[str, Any], key: str, *, integer: bool = False) -> int | float | None:
    value = body.get(key)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (integer and not float(value).is_integer())
    ):
        raise TranslationError(f"{key} must be {'an integer' if integer else 'a number'}", param=key)
    return int(value) if integer else value


def generation_config(body: dict[str, Any], model: str) -> dict[str, Any]:
    gen: dict[str, Any] = {}
    for key, target, integer in (
        ("temperature", "temperature", False),
        ("top_p", "topP", False),
        ("top_k", "topK", True),
        ("n", "candidateCount", True),
        ("seed", "seed", True),
        ("presence_penalty", "presencePenalty", False),
        ("frequency_penalty", "frequencyPenalty", False),
    ):
        value = _number(body, key, integer=integer)
        if value is not None:
            gen[target] = value
    max_key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = _number(body, max_key, integer=True)
    if max_tokens is not None:
        gen["maxOutputTokens"] = max_tokens

    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise TranslationError("stop must be a string or an array of strings", param="stop")
        if [s for s in stop if s]:
            gen["stopSequences"] = [s for s in stop if s]

    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        kind = fmt.get("type")
        if kind == "json_object":
            gen["responseMimeType"] = "application/json"
        elif kind == "json_schema":
            spec = fmt.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
            gen["responseMimeType"] = "application/json"
            if schema is not None:
                gen["responseSchema"] = clean_schema(
                    schema, ordered=True, where="response_format.json_schema.schema"
                )
        elif kind != "text":
            raise TranslationError(f"response_format type {kind!r} is not supported", param="response_format")
    elif fmt is not None:
        raise TranslationError("response_format must be an object", param="response_format")

    thinking = thinking_config(body, model)
    if thinking:
        gen["thinkingConfig"] = thinking
    return gen

"""OpenAI sampling, length, stop, response_format and reasoning controls -> Gemini generationConfig."""

from __future__ import annotations

import logging
from typing import Any

from translators.gemini.exceptions import TranslationError
from translators.gemini.models import takes_penalties
from translators.gemini.schema import clean_schema, is_free_form
from translators.gemini.thinking import thinking_config

log = logging.getLogger(__name__)

_SAMPLING = (
    ("temperature", "temperature", False),
    ("top_p", "topP", False),
    ("top_k", "topK", True),
    ("n", "candidateCount", True),
    ("seed", "seed", True),
)
_PENALTIES = (("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty"))


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


def dropped_penalties(body: dict[str, Any], model: str) -> list[str]:
    """The non-zero penalties of `body` that `model` refuses ("Penalty is not enabled"): left out of the
    request. A zero penalty is the default anyway and never sent."""
    if takes_penalties(model):
        return []
    return [key for key, _ in _PENALTIES if _number(body, key)]


def generation_config(body: dict[str, Any], model: str) -> dict[str, Any]:
    gen: dict[str, Any] = {}
    for key, target, integer in _SAMPLING:
        value = _number(body, key, integer=integer)
        if value is not None:
            gen[target] = value
    dropped = dropped_penalties(body, model)
    for key, target in _PENALTIES:
        value = _number(body, key)
        if value and key not in dropped:
            gen[target] = value
    if dropped:
        log.debug("dropping %s: %s refuses penalties", " and ".join(dropped), model)
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

    gen.update(_response_format(body.get("response_format")))
    thinking = thinking_config(body, model)
    if thinking:
        gen["thinkingConfig"] = thinking
    return gen


def _response_format(fmt: Any) -> dict[str, Any]:
    if fmt is None:
        return {}
    if not isinstance(fmt, dict):
        raise TranslationError("response_format must be an object", param="response_format")
    kind = fmt.get("type")
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind != "json_schema":
        raise TranslationError(f"response_format type {kind!r} is not supported", param="response_format")
    spec = fmt.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if schema is None:
        return {"responseMimeType": "application/json"}
    cleaned = clean_schema(schema, ordered=True, where="response_format.json_schema.schema")
    if is_free_form(cleaned):
        # Any JSON object: JSON mode says exactly that, and Gemini refuses an object without properties.
        log.debug("response schema is a free-form object: sending JSON mode without a schema")
        return {"responseMimeType": "application/json"}
    return {"responseMimeType": "application/json", "responseSchema": cleaned}

"""Gemini model names: request paths, models.list pages and the model families that behave differently."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from translators.gemini.exceptions import GeminiFormatError, TranslationError

API_VERSION = "v1beta"


def _split_name(model: str) -> tuple[str, str]:
    """(collection, bare name): "models" unless the name says "tunedModels/"."""
    name = model.strip() if isinstance(model, str) else ""
    collection = "models"
    for prefix in ("models/", "tunedModels/"):
        if name.startswith(prefix):
            collection, name = prefix[:-1], name[len(prefix) :]
    if not name:
        raise TranslationError("the Gemini model name is empty", param="model")
    return collection, name


def method_path(model: str, method: str) -> str:
    """The name is URL-quoted so it cannot add path segments or a method."""
    collection, name = _split_name(model)
    return f"/{API_VERSION}/{collection}/{quote(name, safe='')}:{method}"


def gemini_path(model: str, stream: bool) -> str:
    """Request path for generating with a model."""
    return method_path(model, "streamGenerateContent?alt=sse" if stream else "generateContent")


def count_tokens_path(model: str) -> str:
    return method_path(model, "countTokens")


def resource_name(model: str) -> str:
    """The model as a request body names it: "models/gemini-2.5-flash"."""
    collection, name = _split_name(model)
    return f"{collection}/{name}"


def parse_model_page(data: dict[str, Any]) -> tuple[list[str], str | None]:
    """One models.list page -> (ids usable with generateContent, without "models/"; next page token)."""
    if not isinstance(data, dict):
        raise GeminiFormatError("models.list answer is not an object")
    models = data.get("models") or []
    if not isinstance(models, list):
        raise GeminiFormatError("models.list answer has no 'models' array")
    ids: list[str] = []
    for m in models:
        if not isinstance(m, dict) or not isinstance(m.get("name"), str):
            continue
        methods = m.get("supportedGenerationMethods")
        if isinstance(methods, list) and "generateContent" in methods:
            ids.append(m["name"].removeprefix("models/"))
    token = data.get("nextPageToken")
    return ids, token if isinstance(token, str) and token else None


def bare_model(model: str) -> str:
    """The lower-cased model name without any "models/"-style prefix, for family checks."""
    return model.rsplit("/", 1)[-1].lower()


def is_gemini3(model: str) -> bool:
    return bare_model(model).startswith("gemini-3")


_GEMMA = re.compile(r"gemma-?(\d+)n?(?:-|$)")


def gemma_generation(model: str) -> int | None:
    """3 for gemma-3-27b-it and gemma-3n-e4b-it, 4 for gemma-4-31b-it, 1 for the first names (gemma-7b-it);
    None for anything that is not Gemma."""
    bare = bare_model(model)
    if not bare.startswith("gemma"):
        return None
    match = _GEMMA.match(bare)
    return int(match.group(1)) if match else 1


def takes_system_instruction(model: str) -> bool:
    """Gemma 3 and older answer 400 "Developer instruction is not enabled"; Gemma 4 has a system role."""
    generation = gemma_generation(model)
    return generation is None or generation >= 4


def takes_penalties(model: str) -> bool:
    """Non-zero presence/frequency penalties: Gemini 2.0 (not its thinking preview) and the 1.5 "-002"
    models; everything newer, and Gemma, answers 400 "Penalty is not enabled for models/..."."""
    bare = bare_model(model)
    if bare.startswith("gemini-2.0"):
        return "thinking" not in bare
    return bare.startswith("gemini-1.5") and bare.endswith("-002")

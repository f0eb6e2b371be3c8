"""Gemini model names: request paths, models.list pages and the model families that behave differently."""

from __future__ import annotations

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

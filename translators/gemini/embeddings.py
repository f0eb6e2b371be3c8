"""OpenAI embeddings requests <-> Gemini `embedContent` (one input) and `batchEmbedContents` (several).

OpenAI's `input` may be token arrays; Gemini embeds text only, so those are a 400 here. `dimensions`
becomes `outputDimensionality`; `user` has no Gemini counterpart and is dropped. With `encoding_format:
"base64"` each vector is little-endian float32 bytes, base64-encoded, exactly as OpenAI sends it (the
openai SDK asks for base64 unless told otherwise and decodes it that way).
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from translators.gemini.exceptions import GeminiFormatError, TranslationError
from translators.gemini.models import method_path, resource_name

ENCODINGS = ("float", "base64")


def embeddings_request(request: dict[str, Any], model: str) -> tuple[str, dict[str, Any]]:
    """(request path, body) for OpenAI's embeddings `request` on `model`. Raises TranslationError."""
    texts = input_texts(request.get("input"))
    encoding(request)
    options = {}
    if (dims := _dimensions(request.get("dimensions"))) is not None:
        options["outputDimensionality"] = dims
    if len(texts) == 1:
        return method_path(model, "embedContent"), {"content": _content(texts[0]), **options}
    name = resource_name(model)  # each batched request names the model again, as Google requires
    requests = [{"model": name, "content": _content(text), **options} for text in texts]
    return method_path(model, "batchEmbedContents"), {"requests": requests}


def embeddings_answer(data: Any, model: str, request: dict[str, Any]) -> dict[str, Any]:
    """Gemini's answer to embeddings_request(request) as OpenAI's embeddings list. Raises
    GeminiFormatError for an answer that is not one (or holds another number of vectors)."""
    vectors = _vectors(data)
    expected = len(input_texts(request.get("input")))
    if len(vectors) != expected:
        raise GeminiFormatError(f"{len(vectors)} embeddings for {expected} inputs")
    as_base64 = encoding(request) == "base64"
    try:
        items = [
            {"object": "embedding", "index": i, "embedding": to_base64(v) if as_base64 else v}
            for i, v in enumerate(vectors)
        ]
    except OverflowError:
        raise GeminiFormatError("an embedding value does not fit a float32") from None
    # Google's AI Studio endpoint reports no token usage for embeddings (Vertex-style answers carry
    # usageMetadata); OpenAI's schema requires the fields, so zeros stand for "not reported".
    meta = data.get("usageMetadata")
    tokens = meta.get("promptTokenCount") if isinstance(meta, dict) else None
    tokens = tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else 0
    return {
        "object": "list",
        "data": items,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def input_texts(value: Any) -> list[str]:
    """The texts of OpenAI's `input`: a string or a non-empty list of non-empty strings."""
    if isinstance(value, str):
        value = [value]
    if value is None:
        raise TranslationError("Missing required parameter: 'input'.", param="input")
    if not isinstance(value, list) or not value:
        raise TranslationError("'input' must be a string or a non-empty array of strings.", param="input")
    if all(isinstance(v, str) for v in value):
        if any(not v for v in value):
            raise TranslationError("'input' must not contain empty strings.", param="input")
        return value
    if all(isinstance(v, int) or (isinstance(v, list) and v) for v in value):
        raise TranslationError(
            "Token arrays as 'input' are not supported by this backend (it embeds text): send strings.",
            param="input",
        )
    raise TranslationError("'input' must be a string or a non-empty array of strings.", param="input")


def encoding(request: dict[str, Any]) -> str:
    value = request.get("encoding_format")
    if value is None:
        return "float"
    if value not in ENCODINGS:
        raise TranslationError(
            f"Invalid value for 'encoding_format': {value!r}; expected 'float' or 'base64'.",
            param="encoding_format",
        )
    return str(value)


def to_base64(vector: list[float]) -> str:
    """OpenAI's base64 embedding: little-endian float32 values."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def _dimensions(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TranslationError("'dimensions' must be a positive integer.", param="dimensions")
    return value


def _content(text: str) -> dict[str, Any]:
    return {"parts": [{"text": text}]}


def _vectors(data: Any) -> list[list[float]]:
    """The vectors of an embedContent (`embedding`) or batchEmbedContents (`embeddings`) answer."""
    if not isinstance(data, dict):
        raise GeminiFormatError("the answer is not a JSON object")
    if "embedding" in data:
        items = [data["embedding"]]
    elif isinstance(data.get("embeddings"), list):
        items = data["embeddings"]
    else:
        raise GeminiFormatError("the answer holds neither 'embedding' nor 'embeddings'")
    vectors = []
    for item in items:
        values = item.get("values") if isinstance(item, dict) else None
        if not isinstance(values, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        ):
            raise GeminiFormatError("an embedding has no list of numbers as 'values'")
        vectors.append(values)
    return vectors

"""models.countTokens: the request that counts what generateContent would get, and its answer."""

from __future__ import annotations

from typing import Any

from translators.gemini.models import resource_name
from translators.gemini.request import to_gemini_request


def to_count_tokens_request(body: dict[str, Any], *, model: str) -> dict[str, Any]:
    """The whole translated request (system instruction, tools and config included) as
    `generateContentRequest`, which needs `model`; the bare `contents` form would leave the system
    instruction and tools uncounted."""
    return {"generateContentRequest": {"model": resource_name(model), **to_gemini_request(body, model=model)}}


def read_token_count(data: Any) -> int | None:
    """`{"totalTokens": N}` -> N; None for anything else (an error, or a body without the count)."""
    total = data.get("totalTokens") if isinstance(data, dict) else None
    return total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None

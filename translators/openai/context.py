"""Context-length failures: every provider's wording recognised, and OpenAI's own given back to clients.

Clients and front-ends react to `code: "context_length_exceeded"` and read the two numbers out of
OpenAI's sentence, so whatever the provider said becomes that sentence when the numbers are known.
"""

from __future__ import annotations

import re
from typing import Any

from translators.openai.synthetic import error_body

CONTEXT_CODE = "context_length_exceeded"

_NUM = r"(\d[\d,]*)"
# Each wording with the groups (n: tokens sent, m: the model's window); a None group is not in it.
_WORDINGS: tuple[tuple[re.Pattern[str], int | None, int | None], ...] = (
    # OpenAI (and ours): "This model's maximum context length is M tokens. However, your messages
    # resulted in N tokens." OpenRouter: "This endpoint's maximum context length is M tokens. However,
    # you requested about N tokens (...)". Older OpenAI: "However, you requested N tokens (...)".
    (
        re.compile(
            rf"maximum context length is {_NUM} tokens?\.?\s*However, (?:your messages resulted in|"
            rf"you requested(?: about)?) {_NUM} tokens?",
            re.I,
        ),
        2,
        1,
    ),
    # Gemini: "The input token count (N) exceeds the maximum number of tokens allowed (M)."; some
    # surfaces drop the count: "... exceeds the maximum number of tokens allowed 1048576".
    (
        re.compile(
            rf"input token count\s*(?:\(\s*{_NUM}\s*\)\s*)?exceeds the maximum number of tokens allowed"
            rf"\s*\(?\s*{_NUM}?",
            re.I,
        ),
        1,
        2,
    ),
    # Anthropic: "prompt is too long: N tokens > M maximum"
    (re.compile(rf"prompt is too long:\s*{_NUM} tokens?\s*>\s*{_NUM}", re.I), 1, 2),
    (re.compile(rf"maximum context length is {_NUM} tokens?", re.I), None, 1),
    (re.compile(r"context[ _-]?length|context[ _-]?window|prompt is too long", re.I), None, None),
)


def _number(match: re.Match[str], group: int | None) -> int | None:
    value = match.group(group) if group is not None else None
    return int(value.replace(",", "")) if value else None


def parse_context(message: str) -> tuple[int | None, int | None] | None:
    """(tokens sent, the model's maximum) when `message` reports a context-length failure, else None.

    Either number is None when the wording does not give it."""
    for pattern, n_group, m_group in _WORDINGS:
        match = pattern.search(message)
        if match:
            return _number(match, n_group), _number(match, m_group)
    return None


def context_message(n: int | None, m: int | None, original: str) -> str:
    """OpenAI's sentence when both numbers are known; else the provider's own words (or a plain one)."""
    if n is not None and m is not None:
        return (
            f"This model's maximum context length is {m} tokens. However, your messages resulted in "
            f"{n} tokens. Please reduce the length of the messages."
        )
    return original.strip() or "The request exceeds this model's maximum context length."


def context_error(
    n: int | None, m: int | None, original: str, *, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The OpenAI error body (`{"error": {...}}`) for a context-length failure, as OpenAI sends it."""
    return error_body(context_message(n, m, original), 400, code=CONTEXT_CODE, param="messages", extra=extra)

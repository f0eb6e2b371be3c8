"""Provider error bodies in OpenAI shape, whatever the provider sent (JSON of any shape, or garbage)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any

from addons.backends.base import Failure, Translated
from translators import json_codec
from translators.openai.context import context_error, parse_context
from translators.openai.synthetic import error_body

_PASS_HEADERS = (
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
)


def normalise_error(provider: str, status: int, headers: Mapping[str, str], body: bytes) -> Translated:
    """The provider's message when it gave one, else an excerpt of its body; a context-length failure in
    OpenAI's words and code. The excerpt may end mid-key and header values may hold anything: the
    service redacts both (`Redactor.redact_cut`) before any client, flow or history sees them."""
    message, code, extra = _extract(body)
    context = _context(status, message, extra)
    if message is None:
        out = error_body(_fallback_message(provider, status, body), status)
    elif context is not None:
        out = context_error(*context, extra=extra)
    else:
        out = error_body(message, status, code=code, extra=extra)
    passed = {h: headers[h] for h in _PASS_HEADERS if h in headers}
    return Translated(status, json_codec.dumps(out), {"content-type": "application/json", **passed})


def _fallback_message(provider: str, status: int, body: bytes) -> str:
    text = _decoded(body).strip()
    excerpt = text[:200] + (" …" if len(text) > 200 else "")
    return f"{provider} returned HTTP {status}" + (f": {excerpt}" if excerpt else " with an empty body")


def _context(
    status: int, message: str | None, extra: dict[str, Any] | None
) -> tuple[int | None, int | None, str] | None:
    """(tokens sent, window, the words that said so) for a context-length failure, found in the message
    or in the upstream body OpenRouter relays as `metadata.raw` ("Provider returned error")."""
    if status == 429:  # a token rate limit, not a window: waiting helps
        return None
    raw = (extra or {}).get("metadata", {}).get("raw")
    for text in (message, raw):
        found = parse_context(text) if isinstance(text, str) else None
        if found is not None:
            return (*found, text[:1000])
    return None


def context_exceeded(status: int) -> Failure:
    """Every key of the model has the same window: only another model (a later route element with a
    bigger window) may take the input; else the client must shorten it."""
    return Failure(True, other_model=True, reason=f"context length exceeded ({status})")


def context_failure(status: int, body: bytes) -> Failure | None:
    """context_exceeded when an OpenAI-style error body reports a context-length failure."""
    message, _, extra = _extract(body)
    return context_exceeded(status) if _context(status, message, extra) is not None else None


def _decoded(body: bytes) -> str:
    """Body text as decoded JSON (so `\\u002d`-style escapes spell out what they hide), else as text."""
    try:
        return json_codec.dumps(json_codec.loads(body)).decode()
    except (UnicodeDecodeError, json_codec.JSONDecodeError):
        return body.decode("utf-8", errors="replace")


def _extract(body: bytes) -> tuple[str | None, str | None, dict[str, Any] | None]:
    try:
        data = json_codec.loads(body)
    except (UnicodeDecodeError, json_codec.JSONDecodeError):
        return None, None, None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, str):
        return err, None, None
    if not isinstance(err, dict):
        return None, None, None
    message = err.get("message") if isinstance(err.get("message"), str) else None
    code = err.get("code")
    extra = {"metadata": err["metadata"]} if isinstance(err.get("metadata"), dict) else None
    return message, (str(code) if code is not None else None), extra


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Retry-After (seconds or HTTP date) or retry-after-ms, as the openai SDK reads them."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, parsed.timestamp() - time.time())


def classify_status(status: int, headers: Mapping[str, str]) -> Failure:
    """The provider-independent part: 429 rests the key, 408/5xx try elsewhere, other 4xx are final."""
    if status == 429:
        return Failure(True, retry_after_seconds(headers), rest=True, reason="rate limited (429)")
    if status == 408 or status >= 500:
        return Failure(True, reason=f"upstream error ({status})")
    return Failure(False, reason=f"client error ({status})")

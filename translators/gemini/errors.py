"""Gemini error answers -> OpenAI errors: status, message, code, retry delay, per-day quotas, rejected keys.

Nothing that looks like an API key is ever echoed: every excerpt of an upstream body goes through
`excerpt()`.
"""

from __future__ import annotations

import re
from typing import Any

from translators import json_codec
from translators.openai.context import context_error, parse_context
from translators.openai.synthetic import error_body

_KEY_PATTERN = re.compile(r"AIza[0-9A-Za-z_\-]{20,}|(?<=key=)[^&\s\"']+")
_RETRY_IN = re.compile(r"retry in (\d+(?:\.\d+)?)\s*(ms|s)\b", re.I)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s?\s*$")
_INVALID_KEY_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED"})


def excerpt(text: str, limit: int = 200) -> str:
    """`text` stripped, with anything key-like redacted, cut to `limit` characters."""
    text = _KEY_PATTERN.sub("[redacted]", text.strip())
    return text if len(text) <= limit else text[:limit] + "..."


def _loads(body: bytes) -> Any:
    try:
        return json_codec.loads(body)
    except (UnicodeDecodeError, json_codec.JSONDecodeError, ValueError):
        return None


def _error_object(data: Any) -> dict[str, Any] | None:
    if isinstance(data, list) and data:  # non-SSE stream endpoints wrap errors in an array
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    return err if isinstance(err, dict) else None


def _details(err: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    details = err.get("details")
    return (
        [d for d in details if isinstance(d, dict) and str(d.get("@type", "")).endswith(kind)]
        if isinstance(details, list)
        else []
    )


def _duration_seconds(value: Any) -> float | None:
    if isinstance(value, dict):  # {"seconds": "45", "nanos": 830000000}, seen from some proto encoders
        try:
            return float(value.get("seconds") or 0) + float(value.get("nanos") or 0) / 1e9
        except (TypeError, ValueError):
            return None
    match = _DURATION.match(value) if isinstance(value, str) else None
    return float(match.group(1)) if match else None


def retry_info(body: bytes) -> tuple[float | None, bool]:
    """(seconds to wait from RetryInfo.retryDelay or the "Please retry in Ns." text, is_per_day_quota).

    A per-day quota resets at midnight Pacific time: waiting retryDelay will not help, so key
    cooldowns should treat the key as spent for the day.
    """
    data = _loads(body)
    err = _error_object(data)
    delay: float | None = None
    per_day = False
    message = ""
    if err is not None:
        for info in _details(err, "google.rpc.RetryInfo"):
            delay = _duration_seconds(info.get("retryDelay"))
        for failure in _details(err, "google.rpc.QuotaFailure"):
            for v in failure.get("violations") or []:
                if isinstance(v, dict):
                    names = (
                        f"{v.get('quotaId', '')} {v.get('quotaMetric', '')}".lower()
                        .replace("_", "")
                        .replace("-", "")
                    )
                    per_day = per_day or "perday" in names
        message = str(err.get("message") or "")
    elif data is None:
        message = body[:2000].decode("utf-8", errors="replace")
    if delay is None and message:
        match = _RETRY_IN.search(message)
        if match:
            delay = float(match.group(1)) / (1000 if match.group(2).lower() == "ms" else 1)
    return delay, per_day


def gemini_error_to_openai(status: int, body: bytes) -> tuple[int, dict[str, Any], float | None]:
    """Gemini error body -> (HTTP status for the client, OpenAI error dict, retry-after seconds or None).

    The status is kept (the openai SDK picks its exception class from it); `code` is Gemini's status
    string such as "RESOURCE_EXHAUSTED", or OpenAI's "context_length_exceeded" (with OpenAI's wording)
    when the input is over the model's window. Nothing that looks like an API key is ever echoed.
    """
    err = _error_object(_loads(body))
    retry_after, per_day = retry_info(body)
    if err is None:
        out_status = status if status >= 400 else 502
        text = excerpt(body[:400].decode("utf-8", errors="replace"))
        message = (
            f"Gemini returned HTTP {status} with an unreadable error body: {text}"
            if text
            else f"Gemini returned HTTP {status} with an empty body"
        )
        return out_status, error_body(message, out_status), retry_after

    code_num = err.get("code")
    if status >= 400:
        out_status = status
    else:  # an error inside a 200 (mid-stream): the embedded code is the real status
        out_status = code_num if isinstance(code_num, int) and 400 <= code_num <= 599 else 502
    google_status = err.get("status") if isinstance(err.get("status"), str) else None
    message = excerpt(str(err.get("message") or ""), 2000) or f"Gemini returned HTTP {out_status}"
    code = google_status

    context = parse_context(message) if out_status == 400 else None
    if context is not None:  # the client must shorten the conversation: OpenAI's code and wording
        return out_status, context_error(*context, message), retry_after
    reasons = {d.get("reason") for d in _details(err, "google.rpc.ErrorInfo")}
    if _rejects_key(reasons, message):
        code = next(iter(reasons & _INVALID_KEY_REASONS), "API_KEY_INVALID")
        message = f"Google rejected the Gemini API key configured in the proxy ({code}): {message}"
    elif out_status == 429 and per_day:
        message += " (This is a per-day quota; it resets at midnight Pacific time.)"
    return out_status, error_body(message, out_status, code=code), retry_after


def _rejects_key(reasons: set[Any], message: str) -> bool:
    return bool(reasons & _INVALID_KEY_REASONS) or "api key not valid" in message.lower()


def key_rejected(body: bytes) -> bool:
    """True when a Gemini error says the API key itself is invalid or expired."""
    err = _error_object(_loads(body))
    if err is None:
        return False
    reasons = {d.get("reason") for d in _details(err, "google.rpc.ErrorInfo")}
    return _rejects_key(reasons, str(err.get("message") or ""))

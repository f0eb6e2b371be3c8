"""Provider error bodies in OpenAI shape, whatever the provider sent (JSON of any shape, or garbage)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from addons.backends.base import Translated
from translators.synthetic import error_body

_PASS_HEADERS = (
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
)


def normalise_error(provider: str, status: int, headers: httpx.Headers, body: bytes) -> Translated:
    message, code, extra = _extract(body)
    if message is None:
        excerpt = body[:200].decode("utf-8", errors="replace").strip()
        message = f"{provider} returned HTTP {status}" + (
            f": {excerpt}" if excerpt else " with an empty body"
        )
    out = error_body(message, status, code=code, extra=extra)
    passed = {h: headers[h] for h in _PASS_HEADERS if h in headers}
    return Translated(
        status, json.dumps(out, ensure_ascii=False).encode(), {"content-type": "application/json", **passed}
    )


def _extract(body: bytes) -> tuple[str | None, str | None, dict[str, Any] | None]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
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

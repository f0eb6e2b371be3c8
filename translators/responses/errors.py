"""Errors in the Responses dialect.

Before a stream starts, an error answer is OpenAI's error JSON with its HTTP status, as the internal
answer already is. Mid-stream, a failure becomes `response.failed` whose `response.error.code` is what
Codex acts on: `context_length_exceeded` (it compacts the conversation), `insufficient_quota`,
`rate_limit_exceeded` (it waits for the "try again in Ns" of the message); any other code it retries.
"""

from __future__ import annotations

import re
from typing import Any

from translators import json_codec
from translators.openai.synthetic import error_body

CONTEXT_LENGTH = "context_length_exceeded"
# OpenAI's wording of a context-length failure, for errors that arrive without the code.
_CONTEXT_WORDING = re.compile(r"maximum context length\b", re.I)
_CLIENT_TYPES = frozenset(
    {"invalid_request_error", "not_found_error", "permission_error", "authentication_error", "conflict_error"}
)


def is_context_length(err: dict[str, Any]) -> bool:
    return err.get("code") == CONTEXT_LENGTH or bool(_CONTEXT_WORDING.search(str(err.get("message") or "")))


def from_openai(status: int, body: bytes) -> tuple[int, bytes]:
    """An internal (OpenAI-shaped) error answer -> the Responses error answer: (HTTP status, JSON body)."""
    status = status if status >= 400 else 502
    try:
        data = json_codec.loads(body)
    except (UnicodeDecodeError, ValueError):
        data = None
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):
        text = body[:300].decode("utf-8", errors="replace").strip()
        message = f"the upstream failed with HTTP {status}" + (f": {text}" if text else "")
        return status, json_codec.dumps(error_body(message, status))
    message = str(err.get("message") or f"the upstream failed with HTTP {status}")
    code = CONTEXT_LENGTH if is_context_length(err) else err.get("code")
    out = error_body(message, status, code=code, param=err.get("param"), type_=err.get("type"))
    return status, json_codec.dumps(out)


def response_error(err: Any) -> dict[str, Any]:
    """An internal error object -> `response.error` ({code, message}) of a failed response."""
    err = err if isinstance(err, dict) else {}
    message = str(err.get("message") or "the upstream failed without saying why")
    return {"code": _failure_code(err), "message": message}


def _failure_code(err: dict[str, Any]) -> str:
    code, kind = err.get("code"), err.get("type")
    if is_context_length(err):
        return CONTEXT_LENGTH
    if "insufficient_quota" in (code, kind):
        return "insufficient_quota"
    if kind == "rate_limit_error" or code == "rate_limit_exceeded":
        return "rate_limit_exceeded"
    if kind in _CLIENT_TYPES:
        return "invalid_prompt"
    return "server_error"

"""Internal OpenAI error replies -> Anthropic error bodies and `error` stream events.

Anthropic's `error.type` by status, as its SDK types them (anthropic.types.shared.ErrorType):
400 invalid_request_error, 401 authentication_error, 402 billing_error (the SDK's BillingError), 403
permission_error, 404 not_found_error, 408 and 504 timeout_error (the SDK's GatewayTimeoutError is 504),
413 request_too_large, 429 rate_limit_error, other 5xx api_error with the pipeline's status kept. An
upstream 503, or an error that says it is overloaded, becomes 529 overloaded_error: Claude clients
treat that as "busy, retry later" rather than a broken request. Any other 4xx is invalid_request_error.

A context-length failure becomes 400 `prompt is too long: N tokens > M maximum`, the wording Claude
clients parse to decide to compact the conversation.
"""

from __future__ import annotations

import re
from typing import Any

from translators import json_codec
from translators.anthropic.events import encode_event

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# Mid-stream errors carry no HTTP status: guess it back from OpenAI's error type.
_STATUS_OF_OPENAI_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "insufficient_quota": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "timeout_error": 408,
    "rate_limit_error": 429,
}
OVERLOADED = 529
_PROXY_503 = frozenset({"no_api_key", "store_unavailable"})
_OVERLOADED_CODES = frozenset({"overloaded", "overloaded_error", "UNAVAILABLE", "server_overloaded"})
_MAX_CONTEXT = re.compile(r"maximum context length is (\d+)", re.I)
_PROMPT_SIZE = re.compile(r"(?:resulted in|requested|prompt (?:is|has|contains)) (\d+) tokens", re.I)


def error_body(message: str, type_: str) -> bytes:
    return json_codec.dumps({"type": "error", "error": {"type": type_, "message": message}})


def from_openai(status: int, body: Any) -> tuple[int, bytes]:
    """(Anthropic status, body) for an internal OpenAI error reply (`body` decoded JSON, or None)."""
    err = _inner(body)
    out_status, type_, message = _classify(status, err)
    return out_status, error_body(message, type_)


def stream_error(openai_error: dict[str, Any]) -> bytes:
    """The `event: error` form of an OpenAI stream error (`{"error": {...}}` or the inner object)."""
    err = _inner(openai_error) or openai_error
    code = err.get("code")
    if isinstance(code, int) and 400 <= code <= 599:
        status = code
    else:
        status = _STATUS_OF_OPENAI_TYPE.get(str(err.get("type")), 500)
    _, type_, message = _classify(status, err)
    return encode_event("error", {"error": {"type": type_, "message": message}})


def _inner(body: Any) -> dict[str, Any]:
    err = body.get("error") if isinstance(body, dict) else None
    return err if isinstance(err, dict) else {}


def _classify(status: int, err: dict[str, Any]) -> tuple[int, str, str]:
    message = err.get("message") if isinstance(err.get("message"), str) else ""
    code = err.get("code")
    if code == "context_length_exceeded" or _MAX_CONTEXT.search(message):
        return 400, "invalid_request_error", too_long_message(message)
    if status < 400:  # an error reply must be one, whatever the caller passed
        status = 500
    message = message or f"upstream error (HTTP {status})"
    overloaded = code in _OVERLOADED_CODES or "overloaded" in message.lower()
    # The proxy's own 503s (no key configured, a shared store away) are no load to wait out.
    if (status == 503 and code not in _PROXY_503) or (status >= 500 and overloaded):
        return OVERLOADED, "overloaded_error", message
    if status in _TYPES:
        return status, _TYPES[status], message
    return status, "api_error" if status >= 500 else "invalid_request_error", message


def too_long_message(message: str) -> str:
    """`prompt is too long: N tokens > M maximum`; the original text quoted when N or M is unknown."""
    limit = _MAX_CONTEXT.search(message)
    size = _PROMPT_SIZE.search(message)
    if limit and size:
        return f"prompt is too long: {size.group(1)} tokens > {limit.group(1)} maximum"
    return f"prompt is too long: {message or 'the upstream gave no token counts'}"

"""OpenAI-shaped payloads the proxy builds itself: completions, chunk streams and errors.

Command replies, banners and proxy errors all come from here so the JSON and SSE forms never drift.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

from translators import json_codec
from translators.sse import DONE, encode_data

PROXY_OWNER = "llm-intercept"

# OpenAI's `type` values, by HTTP status, as its SDK and clients expect them.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_type_for(status: int) -> str:
    return _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(
    message: str,
    status: int,
    *,
    code: str | None = None,
    param: str | None = None,
    type_: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    err: dict[str, Any] = {
        "message": message,
        "type": type_ or error_type_for(status),
        "param": param,
        "code": code,
    }
    if extra:
        err.update(extra)
    return {"error": err}


def error_json(message: str, status: int, **kw: Any) -> bytes:
    return json_codec.dumps(error_body(message, status, **kw))


def sse_error_event(message: str, status: int = 502, **kw: Any) -> bytes:
    """Mid-stream failure: the openai SDK raises APIError on a data event carrying `error`."""
    return encode_data(error_body(message, status, **kw))


def completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def completion(
    text: str, model: str, *, finish_reason: str = "stop", cid: str | None = None
) -> dict[str, Any]:
    return {
        "id": cid or completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def _chunk_head(cid: str, model: str, created: int) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
    }


def chunk(
    cid: str,
    model: str,
    created: int,
    delta: dict[str, Any],
    finish_reason: str | None = None,
    index: int = 0,
) -> dict[str, Any]:
    choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    return {**_chunk_head(cid, model, created), "choices": [choice]}


def usage_chunk(cid: str, model: str, created: int, usage: dict[str, Any]) -> dict[str, Any]:
    """The last chunk of a stream asked for usage (`stream_options.include_usage`): no choices."""
    return {**_chunk_head(cid, model, created), "choices": [], "usage": usage}


def text_chunks(text: str, model: str, cid: str, created: int, *, with_role: bool = True) -> list[bytes]:
    """Proxy text as content deltas (used before a model's own tokens, e.g. a banner)."""
    delta: dict[str, Any] = {"content": text}
    if with_role:
        delta = {"role": "assistant", **delta}
    return [encode_data(chunk(cid, model, created, delta))]


def stream_completion(
    text: str, model: str, *, include_usage: bool = False, finish_reason: str = "stop"
) -> bytes:
    """A whole, well-formed SSE stream for a reply the proxy answers itself."""
    cid, created = completion_id(), int(time.time())
    parts: list[bytes] = [encode_data(chunk(cid, model, created, {"role": "assistant", "content": ""}))]
    if text:
        parts.append(encode_data(chunk(cid, model, created, {"content": text})))
    parts.append(encode_data(chunk(cid, model, created, {}, finish_reason)))
    if include_usage:
        parts.append(
            encode_data(
                usage_chunk(
                    cid, model, created, {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
                )
            )
        )
    parts.append(DONE)
    return b"".join(parts)


def model_list(ids: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """OpenAI `/v1/models` list from (id, owned_by) pairs."""
    now = int(time.time())
    return {
        "object": "list",
        "data": [{"id": mid, "object": "model", "created": now, "owned_by": owner} for mid, owner in ids],
    }

"""Helpers shared by the Responses translator tests: fixed ids, SDK validation, SSE framing."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable, Iterable
from typing import Any

from hypothesis import HealthCheck, settings
from openai.types.responses import Response, ResponseItem, ResponseStreamEvent
from pydantic import TypeAdapter

from translators.responses import ResponsesRequest, ResponsesStream, Sealer, to_chat
from translators.sse import DONE, encode_data

FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEY = bytes(range(32))
SEALER = Sealer(KEY)

_EVENT = TypeAdapter(ResponseStreamEvent)
_RESPONSE = TypeAdapter(Response)
_ITEM = TypeAdapter(ResponseItem)
# Codes Codex acts on that the SDK's ResponseError literal does not list (OpenAI sends them all the same).
CODEX_CODES = frozenset({"context_length_exceeded", "insufficient_quota"})


def counter_ids() -> Callable[[str], str]:
    n = itertools.count(1)
    return lambda prefix: f"{prefix}{next(n)}"


def unseal(token: str) -> dict[str, Any]:
    return SEALER.open(token, "reasoning item")


def request(body: dict[str, Any], history: list[dict[str, Any]] | None = None) -> ResponsesRequest:
    return to_chat({"model": "gpt-test", **body}, history, unseal, ids=counter_ids())


def _sdk_ready(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy whose Codex-only error code is swapped for a listed one; everything else is checked as is."""
    obj = copy.deepcopy(obj)
    resp = obj.get("response", obj)
    if isinstance(resp.get("error"), dict) and resp["error"].get("code") in CODEX_CODES:
        resp["error"]["code"] = "server_error"
    return obj


def check_response(resp: dict[str, Any]) -> dict[str, Any]:
    _RESPONSE.validate_python(_sdk_ready(resp))
    return resp


def check_item(item: dict[str, Any]) -> None:
    _ITEM.validate_python(item)


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


def usage(prompt: int = 10, completion: int = 5, cached: int = 2, reasoning: int = 1) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def sse(*events: dict[str, Any], done: bool = True) -> bytes:
    return b"".join(encode_data(e) for e in events) + (DONE if done else b"")


def parse_events(chunks: Iterable[bytes]) -> list[dict[str, Any]]:
    """Responses SSE bytes -> payloads; checks the framing (event line = payload type) and the SDK model."""
    text = b"".join(chunks).decode()
    assert text.endswith("\n\n") or not text
    out = []
    for block in text.split("\n\n")[:-1]:
        event_line, data_line = block.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: "), block
        payload = json.loads(data_line[len("data: ") :])
        assert payload["type"] == event_line[len("event: ") :]
        _EVENT.validate_python(_sdk_ready(payload))
        out.append(payload)
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    return out


def run(
    raw: bytes,
    req: ResponsesRequest | None = None,
    *,
    splits: list[int] | None = None,
    seal: Callable[[dict[str, Any]], str] | None = SEALER.seal,
) -> tuple[list[dict[str, Any]], ResponsesStream]:
    stream = ResponsesStream(req or request({"stream": True}), "resp_1", 1700000000, seal, ids=counter_ids())
    bounds = [0, *(splits or []), len(raw)]
    out: list[bytes] = []
    for a, b in itertools.pairwise(bounds):
        out += stream.feed(raw[a:b])
    out += stream.finish()
    assert stream.finish() == [] and stream.feed(b"data: {}\n\n") == []  # nothing after the end
    return parse_events(out), stream


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]

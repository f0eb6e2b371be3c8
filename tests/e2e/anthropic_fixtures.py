"""Pieces of the Anthropic SDK e2e tests (test_anthropic_sdk.py): the proxy's `model_map`, a fake Gemini
that also counts tokens, upstream answers scripted in each provider's own wire format, and the checks
that hold every answer to the SDK's own types and to the Messages event grammar.

The SDK builds its objects without validating them, so every JSON body and SSE event is validated here
on the raw bytes, and a field the SDK's types do not know (a misspelling, a leftover OpenAI field) fails.
"""

from __future__ import annotations

import base64
import json
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from anthropic.types import ErrorResponse, Message, RawMessageStreamEvent
from pydantic import BaseModel, TypeAdapter

from tests.fakes.fake_gemini import FakeGemini, error_json, raw_stream
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.fakes.server import Recorded, Script
from tests.harness import ProxyProcess, leaks

GEMINI_MODEL = "claude-test-sonnet"  # model_map: claude-* -> Gemini
OR_MODEL = "gpt-4o-mini"  # model_map: gpt-* -> OpenRouter
LIMITED_MODEL = "claude-limited-1"  # the first matching pattern wins: this one is not gemini-2.5-flash
ANSWERED_BY = {GEMINI_MODEL: "gemini:gemini-2.5-flash", OR_MODEL: "openrouter:openai/gpt-4o-mini"}
MODEL_MAP = """\
model_map:
  "claude-limited-*": "gemini:gemini-2.0-flash"
  "claude-*": "gemini:gemini-2.5-flash"
  "gpt-*": "openrouter:openai/gpt-4o-mini"
"""
BACKENDS = pytest.mark.parametrize("model", [GEMINI_MODEL, OR_MODEL], ids=["gemini", "openrouter"])
STREAM = pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
ANTHROPIC_VERSION = {"anthropic-version": "2023-06-01"}
# A 1x1 PNG.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
SIGNATURE = base64.b64encode(b"gemini-thought-signature-for-the-sdk-tests").decode()
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def is_gemini(model: str) -> bool:
    return ANSWERED_BY.get(model, model).startswith("gemini:")


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(msg: Message) -> dict[str, Any]:
    """An answer sent back as history, exactly as received (thinking signatures included)."""
    return {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]}


def upstream(model: str, gemini: FakeGemini, openrouter: FakeOpenRouter) -> dict[str, Any]:
    """The request body the backend of `model` received last."""
    rec = gemini.last_generate() if is_gemini(model) else openrouter.last("/chat/completions")
    return rec.json()


def root_url(proxy: ProxyProcess) -> str:
    """The SDK appends `/v1/messages` itself."""
    return f"http://127.0.0.1:{proxy.reverse_port}"


class CountingGemini(FakeGemini):
    """FakeGemini that also answers models.countTokens: `count_base` + the words of the request, so a
    test knows the number only Gemini could have given (the proxy's local estimate cannot hit it)."""

    count_base = 4000

    def __init__(self, keys: tuple[str, ...]) -> None:
        super().__init__(keys)
        self.counted: list[int] = []

    def reset(self) -> None:
        super().reset()
        self.counted = []

    def count_requests(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0].endswith(":countTokens")]

    def handle(self, h: BaseHTTPRequestHandler, rec: Recorded) -> None:
        if not (rec.method == "POST" and rec.path.split("?")[0].endswith(":countTokens")):
            super().handle(h, rec)
            return
        if self.key_of(rec) not in self.keys:
            self.send_json(h, 400, error_json(400, "INVALID_ARGUMENT", "API key not valid."))
            return
        body = rec.json() or {}
        inner = body.get("generateContentRequest") or body
        if not inner.get("contents"):
            self.send_json(h, 400, error_json(400, "INVALID_ARGUMENT", "contents is not specified"))
            return
        words = len(json.dumps(inner).split())
        self.counted.append(self.count_base + words)
        self.send_json(h, 200, {"totalTokens": self.counted[-1]})


# -- upstream answers in the providers' wire formats -----------------------------------------------------


def gemini_answer(
    events: list[list[dict[str, Any]]],
    stream: bool,
    finish: str = "STOP",
    usage: dict[str, int] | None = None,
) -> Script:
    """A Gemini answer whose stream events carry these parts (a JSON answer: all parts in one)."""
    usage = usage or {"promptTokenCount": 11, "candidatesTokenCount": 4, "totalTokenCount": 15}

    def event(parts: list[dict[str, Any]], final: bool) -> dict[str, Any]:
        cand: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        out: dict[str, Any] = {"candidates": [cand], "modelVersion": "gemini-2.5-flash", "responseId": "r-1"}
        if final:
            cand["finishReason"] = finish
            out["usageMetadata"] = usage
        return out

    if not stream:
        return Script(json_body=event([p for parts in events for p in parts], True))
    return raw_stream([event(parts, i == len(events) - 1) for i, parts in enumerate(events)])


def openrouter_answer(
    message: dict[str, Any],
    stream: bool,
    finish: str = "stop",
    usage: dict[str, Any] | None = None,
    **choice_extra: Any,
) -> Script:
    """An OpenAI-format answer; streamed, content, reasoning and tool arguments come in several pieces.
    `choice_extra` goes into the (finishing) choice, e.g. vLLM's `stop_reason`."""
    usage = usage or {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
    base = {"id": "gen-sdk-1", "created": 1700000000, "model": "openai/gpt-4o-mini"}
    if not stream:
        choice = {
            "index": 0,
            "message": {"role": "assistant", **message},
            "finish_reason": finish,
            **choice_extra,
        }
        return Script(json_body={**base, "object": "chat.completion", "choices": [choice], "usage": usage})
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"reasoning": p} for p in _pieces(message.get("reasoning") or "")]
    deltas += [{"content": p} for p in _pieces(message.get("content") or "")]
    for i, call in enumerate(message.get("tool_calls") or []):
        fn = call["function"]
        head = {
            "index": i,
            "id": call["id"],
            "type": "function",
            "function": {"name": fn["name"], "arguments": ""},
        }
        deltas.append({"tool_calls": [head]})
        deltas += [
            {"tool_calls": [{"index": i, "function": {"arguments": p}}]} for p in _pieces(fn["arguments"])
        ]

    def chunk(delta: dict[str, Any], last: bool = False) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish if last else None}
        body = {**base, "object": "chat.completion.chunk", "choices": [choice]}
        if last:
            choice.update(choice_extra)
            body["usage"] = usage
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    events = [chunk(d) for d in deltas] + [chunk({}, last=True), b"data: [DONE]\n\n"]
    return Script(events=events)


def _pieces(text: str, n: int = 3) -> list[str]:
    size = max(1, -(-len(text) // n))
    return [text[i : i + size] for i in range(0, len(text), size)]


def tool_call(call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


# -- checks ---------------------------------------------------------------------------------------------

_EVENT = TypeAdapter(RawMessageStreamEvent)


def strict(obj: Any, where: str = "") -> None:
    """No field anywhere that the SDK's types do not declare."""
    if isinstance(obj, BaseModel):
        assert not obj.model_extra, (
            f"fields unknown to the SDK at {where or 'top'}: {sorted(obj.model_extra)}"
        )
        for name in type(obj).model_fields:
            strict(getattr(obj, name), f"{where}.{name}")
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            strict(item, f"{where}[{i}]")


def message(body: bytes | dict[str, Any]) -> Message:
    """The raw JSON of a Messages answer, validated as the SDK's Message."""
    data = json.loads(body) if isinstance(body, bytes) else body
    msg = Message.model_validate(data)
    strict(msg)
    assert msg.id.startswith("msg_"), msg.id
    return msg


def blocks(msg: Message) -> list[tuple[str, Any]]:
    """Each content block as (type, its text, thinking or input)."""
    payload = {"text": "text", "thinking": "thinking", "tool_use": "input"}
    return [(b.type, getattr(b, payload[b.type])) for b in msg.content]


def error_body(body: Any, kind: str) -> str:
    """An Anthropic error body of this type: its message."""
    err = ErrorResponse.model_validate(body)
    strict(err)
    assert err.error.type == kind, body
    return err.error.message


def sse_frames(body: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    """(event line, parsed data) per SSE event; written apart from the proxy's own SSE code on purpose."""
    frames = []
    for block in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        event, data = None, []
        for line in block.decode().split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            frames.append((event, json.loads("\n".join(data))))
    return frames


def replay(frames: list[tuple[str | None, dict[str, Any]]]) -> Message:
    """Check the event grammar (every event named by its `event:` line and valid as the SDK's type;
    message_start, then each block's start / deltas / stop, indexed from 0, never interleaved, then
    message_delta and message_stop) and build the Message the events describe."""
    names = [event for event, _ in frames if event != "ping"]
    assert names[:1] == ["message_start"] and names[-2:] == ["message_delta", "message_stop"], names
    msg: dict[str, Any] = {}
    blocks: list[dict[str, Any]] = []
    partial: dict[int, str] = {}
    open_at: int | None = None
    for event, data in frames:
        assert event == data.get("type"), f"`event: {event}` line for a {data.get('type')!r} event"
        if event == "ping":
            continue
        strict(_EVENT.validate_python(data), event)
        if event == "message_start":
            msg = dict(data["message"])
            assert msg["content"] == [] and msg["stop_reason"] is None, msg
        elif event == "content_block_start":
            assert open_at is None and data["index"] == len(blocks), (open_at, data)
            open_at = data["index"]
            blocks.append(dict(data["content_block"]))
        elif event == "content_block_delta":
            assert data["index"] == open_at, (open_at, data)
            delta = data["delta"]
            if delta["type"] == "input_json_delta":
                assert blocks[open_at]["type"] == "tool_use", (blocks[open_at], delta)
                partial[open_at] = partial.get(open_at, "") + delta["partial_json"]
            else:
                _apply(blocks[open_at], delta)
        elif event == "content_block_stop":
            assert data["index"] == open_at, (open_at, data)
            if open_at in partial:
                blocks[open_at]["input"] = json.loads(partial[open_at])
            open_at = None
        elif event == "message_delta":
            assert open_at is None, "message_delta inside an open block"
            msg |= {k: data["delta"].get(k) for k in ("stop_reason", "stop_sequence")}
            msg["usage"] = msg["usage"] | {k: v for k, v in data["usage"].items() if v is not None}
    return message(msg | {"content": blocks})


_DELTAS = {
    "text_delta": ("text", "text"),
    "thinking_delta": ("thinking", "thinking"),
    "signature_delta": ("thinking", "signature"),
}


def _apply(block: dict[str, Any], delta: dict[str, Any]) -> None:
    kind, field = _DELTAS[delta["type"]]
    assert block["type"] == kind, (block, delta)
    block[field] = block.get(field, "") + delta[field]


def assert_no_key(proxy: ProxyProcess, *texts: str | bytes) -> None:
    for text in texts:
        data = text.encode() if isinstance(text, str) else text
        assert not leaks(data, proxy.secrets()), "an upstream API key reached the client"

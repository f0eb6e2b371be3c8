"""What the translators produce, read by Anthropic's own Python SDK: its types validate every message and
event, and its client (over a mock transport, no network) streams and reassembles our answers."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest

from tests.unit.translators.anthropic.support import MODEL, chat_sse, chunk, parse_events, run_stream
from tests.unit.translators.anthropic.test_stream import RICH_STREAM, TEXT_STREAM
from translators.anthropic import MessagesStream, from_openai, model_list, stream_of, to_message
from translators.openai.assemble import assemble_completion
from translators.openai.synthetic import error_body as openai_error

anthropic = pytest.importorskip("anthropic")
pydantic = pytest.importorskip("pydantic")

EVENTS = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent)

COMPLETIONS: list[dict[str, Any]] = [
    assemble_completion(RICH_STREAM),
    assemble_completion(TEXT_STREAM),
    {
        "id": "x",
        "choices": [
            {"index": 0, "message": {"content": None, "reasoning_signature": "S"}, "finish_reason": "stop"}
        ],
    },
    {"id": "x", "choices": [{"index": 0, "message": {"content": None}, "finish_reason": "content_filter"}]},
    {"id": "x", "choices": [{"index": 0, "message": {"content": "cut"}, "finish_reason": "length"}]},
    {
        "choices": [
            {
                "index": 0,
                "message": {
                    "content": None,
                    "tool_calls": [{"id": None, "function": {"name": "f", "arguments": "oops"}}],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 50,
            "completion_tokens": 9,
            "prompt_tokens_details": {"cached_tokens": 10, "cache_write_tokens": 5},
            "completion_tokens_details": {"reasoning_tokens": 4},
        },
    },
]


def _http() -> Any:
    """The HTTP library this SDK version is built on (httpx, or httpx2 in newer releases)."""
    base = importlib.import_module("anthropic._base_client")
    return next(getattr(base, name) for name in ("httpx2", "httpx") if hasattr(base, name))


def _client(status: int, body: bytes, content_type: str) -> Any:
    http = _http()

    def handler(request: Any) -> Any:
        return http.Response(status, content=body, headers={"content-type": content_type})

    client = http.Client(transport=http.MockTransport(handler))
    return anthropic.Anthropic(
        api_key="test", base_url="http://127.0.0.1:9", http_client=client, max_retries=0
    )


@pytest.mark.parametrize("completion", COMPLETIONS)
def test_messages_validate(completion: dict[str, Any]) -> None:
    message = to_message(completion, MODEL, [])
    parsed = anthropic.types.Message.model_validate(message)
    assert parsed.model_dump(mode="json", exclude_unset=True) == message


@pytest.mark.parametrize("completion", COMPLETIONS)
def test_stream_events_validate(completion: dict[str, Any]) -> None:
    for event in parse_events(stream_of(completion, MODEL, [])):
        EVENTS.validate_python(event)


@pytest.mark.parametrize("raw", [TEXT_STREAM, RICH_STREAM])
def test_translated_stream_events_validate(raw: bytes) -> None:
    for event in run_stream(raw):
        EVENTS.validate_python(event)


def test_error_bodies_and_events_validate() -> None:
    for status in (400, 401, 402, 403, 404, 429, 500, 503, 504):
        body = json.loads(from_openai(status, openai_error("m", status))[1])
        anthropic.types.ErrorResponse.model_validate(body)
    s = MessagesStream(MODEL, [])
    event = parse_events(s.feed(chat_sse(chunk({"content": "x"}), done=False)) + s.finish())[-1]
    anthropic.types.ErrorResponse.model_validate(event)


def test_model_list_validates() -> None:
    for entry in model_list(["a", "b"])["data"]:
        anthropic.types.ModelInfo.model_validate(entry)


def test_sdk_client_reassembles_our_stream_into_the_same_message() -> None:
    client = _client(200, b"".join(MessagesStream(MODEL, []).feed(RICH_STREAM)), "text/event-stream")
    with client.messages.stream(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        final = stream.get_final_message()
    completion = assemble_completion(RICH_STREAM)
    completion["choices"][0]["message"]["reasoning_signature"] = "GSIG"  # assemble does not gather it
    expected = to_message(completion, MODEL, [])
    got = final.model_dump(mode="json", exclude_none=True)
    assert got["content"] == expected["content"]
    assert (got["stop_reason"], got["usage"]) == (expected["stop_reason"], expected["usage"])


def test_sdk_client_reads_a_whole_message() -> None:
    message = to_message(COMPLETIONS[0], MODEL, [])
    client = _client(200, json.dumps(message).encode(), "application/json")
    got = client.messages.create(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}])
    assert got.model_dump(mode="json", exclude_unset=True) == message


def test_sdk_client_raises_on_our_error_event() -> None:
    s = MessagesStream(MODEL, [])
    raw = b"".join(s.feed(chat_sse(chunk({"content": "x"}), {"error": openai_error("busy", 429)})))
    client = _client(200, raw, "text/event-stream")
    with (
        pytest.raises(anthropic.APIStatusError) as exc,
        client.messages.stream(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        stream.get_final_message()
    assert exc.value.body == {"type": "error", "error": {"type": "rate_limit_error", "message": "busy"}}


@pytest.mark.parametrize(
    ("status", "error"), [(429, "RateLimitError"), (529, "OverloadedError"), (400, "BadRequestError")]
)
def test_sdk_client_raises_the_right_class_for_our_error_replies(status: int, error: str) -> None:
    out_status, body = from_openai(503 if status == 529 else status, openai_error("no", status))
    client = _client(out_status, body, "application/json")
    with pytest.raises(getattr(anthropic, error)):
        client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}])

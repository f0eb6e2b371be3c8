"""translators/gemini/stream.py: Gemini SSE -> OpenAI chunks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.translators.gemini.support import FAST, cand, gemini_sse, parse_sse, run_stream
from translators.gemini import GeminiStreamTranslator
from translators.gemini import stream as gemini_stream

TEXT_STREAM = gemini_sse(
    {"candidates": [cand([{"text": "Hel"}])], "responseId": "r1", "modelVersion": "gemini-2.5-flash"},
    {"candidates": [cand([{"text": "lo, wörld ✓ 😀"}])], "responseId": "r1"},
    {
        "candidates": [cand([{"text": "!"}], "STOP")],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 3, "totalTokenCount": 7},
        "responseId": "r1",
    },
)


def test_text_stream_translates_event_by_event() -> None:
    t = GeminiStreamTranslator(model="alias")
    events = TEXT_STREAM.split(b"\r\n\r\n")
    first = parse_sse(t.feed(events[0] + b"\r\n\r\n"))
    assert [c["choices"][0]["delta"] for c in first] == [{"role": "assistant", "content": "Hel"}]
    out = first + parse_sse(t.feed(b"\r\n\r\n".join(events[1:]))) + parse_sse(t.finish())
    chunks = out[:-2]  # then the usage chunk and [DONE]
    assert out[-1] == "[DONE]"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Hello, wörld ✓ 😀!"
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert {c["id"] for c in chunks} == {"chatcmpl-r1"}
    assert len({c["created"] for c in chunks}) == 1
    assert all(
        c["object"] == "chat.completion.chunk" and c["model"] == "alias" and "usage" not in c for c in chunks
    )


def test_stream_usage_chunk_comes_last_before_done() -> None:
    out = run_stream(TEXT_STREAM)
    assert out[-1] == "[DONE]"
    usage = out[-2]
    assert (
        usage["choices"] == []
        and usage["usage"]["total_tokens"] == 7
        and usage["usage"]["prompt_tokens"] == 4
    )
    assert all("usage" not in c for c in out[:-2])


def test_stream_tool_calls_are_indexed_across_events_and_finish_as_tool_calls() -> None:
    raw = gemini_sse(
        {"candidates": [cand([{"text": "Let me look."}])]},
        {
            "candidates": [
                cand([{"functionCall": {"name": "a", "args": {"q": 1}}, "thoughtSignature": "U0lH"}])
            ]
        },
        {
            "candidates": [
                cand(
                    [
                        {"functionCall": {"name": "b", "args": {}}},
                        {"functionCall": {"name": "c", "args": {"z": [1]}}},
                    ]
                )
            ]
        },
        {
            "candidates": [cand([{"text": ""}], "STOP")],
            "usageMetadata": {"promptTokenCount": 1, "totalTokenCount": 1},
        },
    )
    out = run_stream(raw)
    assert out[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Let me look."}
    calls = [tc for c in out[1:-3] for tc in c["choices"][0]["delta"]["tool_calls"]]
    assert calls == [
        {"index": 0, "id": "call_2", "type": "function", "function": {"name": "a", "arguments": '{"q": 1}'}},
        {"index": 1, "id": "call_3", "type": "function", "function": {"name": "b", "arguments": "{}"}},
        {
            "index": 2,
            "id": "call_4",
            "type": "function",
            "function": {"name": "c", "arguments": '{"z": [1]}'},
        },
    ]
    assert out[-3]["choices"][0]["finish_reason"] == "tool_calls"
    assert out[-2]["usage"]["prompt_tokens"] == 1 and out[-1] == "[DONE]"


def test_stream_first_chunk_may_be_a_tool_call_or_a_thought() -> None:
    out = run_stream(
        gemini_sse({"candidates": [cand([{"functionCall": {"name": "f", "args": {}}}], "STOP")]})
    )
    delta = out[0]["choices"][0]["delta"]
    assert delta["role"] == "assistant" and delta["content"] is None and delta["tool_calls"][0]["index"] == 0
    out = run_stream(
        gemini_sse({"candidates": [cand([{"text": "hmm", "thought": True}, {"text": "ok"}], "MAX_TOKENS")]})
    )
    assert out[0]["choices"][0]["delta"] == {"role": "assistant", "content": "ok", "reasoning_content": "hmm"}
    assert out[1]["choices"][0]["finish_reason"] == "length"


def test_stream_with_only_a_finish_event_still_has_a_role() -> None:
    out = run_stream(gemini_sse({"candidates": [cand([{"text": ""}], "STOP")], "responseId": "z"}))
    assert out == [
        {
            "id": "chatcmpl-z",
            "object": "chat.completion.chunk",
            "created": out[0]["created"],
            "model": "client-model",
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": ""},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
        },
        {**out[1], "choices": []},  # the usage chunk (no usageMetadata came: zeros)
        "[DONE]",
    ]
    assert out[1]["usage"]["total_tokens"] == 0


def test_stream_blocked_prompt() -> None:
    out = run_stream(gemini_sse({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}))
    assert out[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    assert out[0]["choices"][0]["finish_reason"] == "content_filter"
    assert out[1]["choices"] == [] and out[2] == "[DONE]"


def test_stream_several_candidates_keep_their_index() -> None:
    raw = gemini_sse(
        {"candidates": [cand([{"text": "a"}], index=0), cand([{"text": "b"}], index=1)]},
        {
            "candidates": [
                cand([{"text": "!"}], "STOP", index=0),
                cand([{"functionCall": {"name": "f"}}], "STOP", index=1),
            ]
        },
    )
    out = run_stream(raw)
    finals = {
        c["choices"][0]["index"]: c["choices"][0]["finish_reason"]
        for c in out[:-2]
        if c["choices"][0]["finish_reason"]
    }
    assert finals == {0: "stop", 1: "tool_calls"}
    roles = [c["choices"][0]["index"] for c in out[:-2] if c["choices"][0]["delta"].get("role")]
    assert roles == [0, 1]


def test_mid_stream_error_event_ends_the_stream() -> None:
    t = GeminiStreamTranslator(model="m")
    raw = gemini_sse(
        {"candidates": [cand([{"text": "partial"}])]},
        {
            "error": {
                "code": 429,
                "message": "Resource has been exhausted. Please retry in 2s.",
                "status": "RESOURCE_EXHAUSTED",
            }
        },
        {"candidates": [cand([{"text": "never"}], "STOP")]},
    )
    out = parse_sse(t.feed(raw))
    assert out[0]["choices"][0]["delta"]["content"] == "partial"
    assert out[1] == {
        "error": {
            "message": "Resource has been exhausted. Please retry in 2s.",
            "type": "rate_limit_error",
            "param": None,
            "code": "RESOURCE_EXHAUSTED",
        }
    }
    assert len(out) == 2 and t.failed
    assert t.feed(gemini_sse({"candidates": [cand([{"text": "more"}], "STOP")]})) == []
    assert t.finish() == []  # no [DONE] after an error, as OpenAI does


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"data: {not json\r\n\r\n", "undecodable"),
        (b"data: 42\r\n\r\n", "not an object"),
        (b"", "without sending any response"),
        (b": keep-alive\r\n\r\n", "without sending any response"),
        (gemini_sse({"candidates": [cand([{"text": "cut"}])]}), "cut off"),
    ],
)
def test_broken_streams_end_with_one_error_event(raw: bytes, fragment: str) -> None:
    out = run_stream(raw)
    errors = [e for e in out if isinstance(e, dict) and "error" in e]
    assert len(errors) == 1 and out[-1] is errors[0]
    assert fragment in errors[0]["error"]["message"]
    assert errors[0]["error"]["type"] == "api_error"
    assert "[DONE]" not in out


def test_feed_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: Any) -> Any:
        raise RuntimeError("kaput")

    monkeypatch.setattr(gemini_stream, "read_candidate", boom)
    t = GeminiStreamTranslator(model="m")
    out = parse_sse(t.feed(gemini_sse({"candidates": [cand([{"text": "x"}])]})))
    assert len(out) == 1 and "kaput" in out[0]["error"]["message"]
    assert t.feed(b"data: {}\r\n\r\n") == [] and t.finish() == []


def test_stream_tolerates_lf_cr_framing_and_array_events() -> None:
    reference = run_stream(TEXT_STREAM)
    for eol in (b"\n", b"\r"):
        assert run_stream(TEXT_STREAM.replace(b"\r\n", eol)) == reference
    # A final event without its blank line is still delivered at the end of the body.
    assert run_stream(TEXT_STREAM[:-4]) == reference
    events = [json.loads(b[6:]) for b in TEXT_STREAM.split(b"\r\n\r\n")[:-1]]
    assert run_stream(b"data: " + json.dumps(events).encode() + b"\n\n") == reference


RICH_STREAM = gemini_sse(
    {"candidates": [cand([{"text": "Thinking… ✓", "thought": True}])], "responseId": "rich"},
    {"candidates": [cand([{"text": "Grüße 😀 "}, {"text": "日本語"}])], "responseId": "rich"},
    b": comment line",
    {
        "candidates": [
            cand(
                [{"functionCall": {"name": "f", "args": {"s": "naïve"}}, "thoughtSignature": "c2lnbmF0dXJl"}]
            )
        ]
    },
    {
        "candidates": [cand([{"text": ""}], "STOP")],
        "usageMetadata": {
            "promptTokenCount": 9,
            "candidatesTokenCount": 4,
            "thoughtsTokenCount": 2,
            "totalTokenCount": 15,
        },
    },
)


def _normalised(out: list[Any]) -> list[Any]:
    return [{**e, "created": 0} if isinstance(e, dict) and "created" in e else e for e in out]


def test_stream_split_at_every_byte_gives_identical_chunks() -> None:
    whole = _normalised(run_stream(RICH_STREAM))
    assert whole[-1] == "[DONE]" and len(whole) == 6
    for cut in range(1, len(RICH_STREAM)):
        assert _normalised(run_stream(RICH_STREAM, splits=[cut])) == whole, cut
    one_by_one = list(range(1, len(RICH_STREAM)))
    assert _normalised(run_stream(RICH_STREAM, splits=one_by_one)) == whole


@given(st.lists(st.integers(1, len(RICH_STREAM) - 1), max_size=40).map(lambda xs: sorted(set(xs))))
@FAST
def test_stream_random_splits_give_identical_chunks(splits: list[int]) -> None:
    whole = _normalised(run_stream(RICH_STREAM))
    assert _normalised(run_stream(RICH_STREAM, splits=splits)) == whole

"""translators/anthropic/stream.py (+ blocks.py): chat.completion.chunk SSE -> Messages stream events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.translators.anthropic.support import (
    FAST,
    MODEL,
    chat_sse,
    chunk,
    parse_events,
    run_stream,
    types,
    usage_chunk,
)
from translators.anthropic import MessagesStream, stream_of, to_message
from translators.anthropic.blocks import BlockWriter
from translators.anthropic.stream import EARLY_END


def tool_delta(index: int, args: str, id_: str | None = None, name: str | None = None) -> dict[str, Any]:
    fn: dict[str, Any] = {"arguments": args}
    if name is not None:
        fn["name"] = name
    call: dict[str, Any] = {"index": index, "type": "function", "function": fn}
    if id_ is not None:
        call["id"] = id_
    return {"tool_calls": [call]}


def deltas(events: list[dict[str, Any]], index: int, key: str) -> str:
    return "".join(
        e["delta"].get(key, "") for e in events if e["type"] == "content_block_delta" and e["index"] == index
    )


TEXT_STREAM = chat_sse(
    b": OPENROUTER PROCESSING",
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Hel"}),
    chunk({"content": "lo, wörld ✓ 😀"}),
    chunk({}, "stop"),
    usage_chunk(12, 4),
)

RICH_STREAM = chat_sse(
    chunk({"role": "assistant", "reasoning_content": "Let me "}),
    chunk({"reasoning_content": "think."}),
    chunk({"reasoning_signature": "GSIG", "content": "Checking."}),
    chunk(tool_delta(0, '{"pa', "call_a", "Read")),
    chunk(tool_delta(0, 'th": "ä.txt"}')),
    chunk(tool_delta(1, "", "call_b", "Bash")),
    chunk(tool_delta(1, '{"command": "ls"}')),
    chunk({}, "tool_calls"),
    usage_chunk(100, 20, prompt_tokens_details={"cached_tokens": 60}),
)


def test_text_stream() -> None:
    events = run_stream(TEXT_STREAM)
    assert types(events) == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0]["message"]
    assert start == {
        "id": "msg_abc",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 0,
        },
    }
    assert events[1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert deltas(events, 0, "text") == "Hello, wörld ✓ 😀"
    assert events[-2] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {
            "input_tokens": 12,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 4,
        },
    }


def test_thinking_then_text_then_two_tool_calls() -> None:
    events = run_stream(RICH_STREAM)
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [s["index"] for s in starts] == [0, 1, 2, 3]
    assert [s["content_block"] for s in starts] == [
        {"type": "thinking", "thinking": "", "signature": ""},
        {"type": "text", "text": ""},
        {"type": "tool_use", "id": "call_a", "name": "Read", "input": {}},
        {"type": "tool_use", "id": "call_b", "name": "Bash", "input": {}},
    ]
    assert deltas(events, 0, "thinking") == "Let me think."
    assert deltas(events, 1, "text") == "Checking."
    assert json.loads(deltas(events, 2, "partial_json")) == {"path": "ä.txt"}
    assert json.loads(deltas(events, 3, "partial_json")) == {"command": "ls"}
    # the signature closes the thinking block, right before its stop
    sig_at = next(i for i, e in enumerate(events) if e.get("delta", {}).get("type") == "signature_delta")
    assert events[sig_at] == {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "signature_delta", "signature": "llmi1.GSIG"},
    }
    assert events[sig_at + 1] == {"type": "content_block_stop", "index": 0}
    # each block stops before the next starts
    opened: list[int] = []
    for e in events:
        if e["type"] == "content_block_start":
            assert not opened
            opened.append(e["index"])
        elif e["type"] in ("content_block_delta", "content_block_stop"):
            assert opened == [e["index"]]
            if e["type"] == "content_block_stop":
                opened.clear()
    assert events[-2]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert events[-2]["usage"]["input_tokens"] == 40 and events[-2]["usage"]["cache_read_input_tokens"] == 60


def test_signature_without_thought_text_still_yields_a_thinking_block() -> None:
    events = run_stream(
        chat_sse(chunk({"role": "assistant", "reasoning_signature": "S", "content": "Hi"}), chunk({}, "stop"))
    )
    assert types(events)[1:6] == [
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
    ]
    assert events[1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert events[2]["delta"] == {"type": "signature_delta", "signature": "llmi1.S"}
    assert events[5]["delta"] == {"type": "text_delta", "text": "Hi"}


def test_a_thinking_block_keeps_its_first_signature() -> None:
    events = run_stream(
        chat_sse(
            chunk({"reasoning_content": "a", "reasoning_signature": "FIRST"}),
            chunk({"reasoning_content": "b", "reasoning_signature": "SECOND"}),
            chunk({}, "stop"),
        )
    )
    sigs = [e["delta"]["signature"] for e in events if e.get("delta", {}).get("type") == "signature_delta"]
    assert sigs == ["llmi1.FIRST"] and deltas(events, 0, "thinking") == "ab"


def test_openrouter_reasoning_field_is_thought_text() -> None:
    events = run_stream(
        chat_sse(chunk({"reasoning": "hmm", "content": None}), chunk({"content": "ok"}, "stop"))
    )
    assert deltas(events, 0, "thinking") == "hmm" and deltas(events, 1, "text") == "ok"


def test_message_delta_waits_for_the_usage_chunk() -> None:
    s = MessagesStream(MODEL, [])
    first = parse_events(s.feed(chat_sse(chunk({"content": "x"}), chunk({}, "stop"), done=False)))
    assert "message_delta" not in types(first) and "content_block_stop" not in types(first)
    rest = parse_events(s.feed(chat_sse(usage_chunk(7, 3))))
    assert types(rest) == ["content_block_stop", "message_delta", "message_stop"]
    assert rest[1]["usage"]["input_tokens"] == 7 and rest[1]["usage"]["output_tokens"] == 3
    assert s.feed(chat_sse(chunk({"content": "late"}))) == [] and s.finish() == []


def test_finish_without_done_still_closes_the_message() -> None:
    events = run_stream(chat_sse(chunk({"content": "x"}), chunk({}, "length"), done=False))
    assert events[-2]["delta"]["stop_reason"] == "max_tokens" and events[-1]["type"] == "message_stop"


def test_message_id_and_input_estimate_given_by_the_caller() -> None:
    events = run_stream(TEXT_STREAM, message_id="msg_given", input_tokens=321)
    assert events[0]["message"]["id"] == "msg_given"
    assert events[0]["message"]["usage"]["input_tokens"] == 321
    assert events[-2]["usage"]["input_tokens"] == 12  # the upstream's own count wins at the end
    no_usage = run_stream(chat_sse(chunk({"content": "x"}), chunk({}, "stop")), input_tokens=321)
    assert no_usage[-2]["usage"]["input_tokens"] == 321


def test_stop_sequence_known_from_the_upstream() -> None:
    raw = chat_sse(chunk({"content": "x"}), chunk({}, "stop", native_finish_reason="stop_sequence"))
    assert run_stream(raw, stops=["END"])[-2]["delta"] == {
        "stop_reason": "stop_sequence",
        "stop_sequence": "END",
    }
    assert run_stream(raw, stops=["A", "B"])[-2]["delta"] == {
        "stop_reason": "end_turn",
        "stop_sequence": None,
    }


@pytest.mark.parametrize(
    ("error", "type_", "message"),
    [
        ({"message": "slow down", "type": "rate_limit_error", "code": None}, "rate_limit_error", "slow down"),
        ({"message": "boom", "type": "api_error", "code": "upstream_stream_error"}, "api_error", "boom"),
        (
            {"message": "The model is overloaded.", "type": "api_error", "code": "UNAVAILABLE"},
            "overloaded_error",
            "The model is overloaded.",
        ),
        ({"message": "Provider returned error", "code": 502}, "api_error", "Provider returned error"),
        (
            {
                "message": "This model's maximum context length is 1000 tokens. "
                "However, your messages resulted in 1500 tokens.",
                "type": "invalid_request_error",
                "code": "context_length_exceeded",
            },
            "invalid_request_error",
            "prompt is too long: 1500 tokens > 1000 maximum",
        ),
    ],
)
def test_upstream_error_mid_stream_ends_with_one_error_event(
    error: dict[str, Any], type_: str, message: str
) -> None:
    s = MessagesStream(MODEL, [])
    out = s.feed(chat_sse(chunk({"content": "partial"}), {"error": error}, chunk({"content": "never"})))
    events = parse_events(out)
    assert types(events) == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert events[-1] == {"type": "error", "error": {"type": type_, "message": message}}
    assert s.failed and s.feed(TEXT_STREAM) == [] and s.finish() == []


@pytest.mark.parametrize(
    "raw",
    [
        chat_sse(chunk({"content": "cut"}), done=False),  # the connection dropped
        chat_sse(chunk({"content": "cut"})),  # [DONE] with no finish_reason
        b"",  # nothing at all
        chat_sse(chunk({"content": "half"}), done=False) + b'data: {"id": "chatcmpl-abc", "choi',
    ],
)
def test_a_stream_that_ends_early_ends_with_an_error_never_a_fake_end_turn(raw: bytes) -> None:
    events = run_stream(raw)
    assert events[-1] == {"type": "error", "error": {"type": "api_error", "message": EARLY_END}}
    assert "message_delta" not in types(events) and "message_stop" not in types(events)


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (chat_sse(chunk({"content": "x"}), b"data: {not json"), "undecodable"),
        (chat_sse(b"data: [1, 2]"), "not an object"),
        (chat_sse(chunk({"content": "x"}), chunk({}, "error")), "reported an error"),
        (
            chat_sse(
                chunk(tool_delta(0, "{}", "a", "f")),
                chunk(tool_delta(1, "{}", "b", "g")),
                chunk(tool_delta(0, " ")),
            ),
            "went back to tool call 0",
        ),
    ],
)
def test_malformed_upstream_streams_end_with_an_error(raw: bytes, needle: str) -> None:
    events = run_stream(raw)
    assert events[-1]["type"] == "error" and needle in events[-1]["error"]["message"]
    assert types(events).count("error") == 1


def test_a_bug_becomes_an_error_event_not_an_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: BlockWriter, text: str) -> list[bytes]:
        raise KeyError("oops")

    monkeypatch.setattr(BlockWriter, "text", broken)
    s = MessagesStream(MODEL, [])
    events = parse_events(s.feed(TEXT_STREAM))
    assert events[-1]["type"] == "error" and "oops" in events[-1]["error"]["message"]
    assert s.finish() == []


def test_tool_call_without_id_gets_one_and_continues_without_index() -> None:
    call = {"tool_calls": [{"function": {"name": "f", "arguments": '{"a"'}}]}
    more = {"tool_calls": [{"function": {"arguments": ": 1}"}}]}
    events = run_stream(chat_sse(chunk(call), chunk(more), chunk({}, "tool_calls")))
    block = events[1]["content_block"]
    assert block["type"] == "tool_use" and block["id"].startswith("toolu_") and block["name"] == "f"
    assert json.loads(deltas(events, 0, "partial_json")) == {"a": 1}
    assert types(events).count("content_block_start") == 1


@pytest.mark.parametrize("raw", [TEXT_STREAM, RICH_STREAM])
def test_split_at_every_byte_gives_the_same_events(raw: bytes) -> None:
    whole = run_stream(raw)
    for cut in range(1, len(raw)):
        assert run_stream(raw, splits=[cut]) == whole, cut
    assert run_stream(raw, splits=list(range(1, len(raw)))) == whole


@given(st.lists(st.integers(1, len(RICH_STREAM) - 1), max_size=40).map(lambda xs: sorted(set(xs))))
@FAST
def test_any_split_gives_the_same_events(splits: list[int]) -> None:
    assert run_stream(RICH_STREAM, splits=splits) == run_stream(RICH_STREAM)


_PIECE = st.one_of(
    st.tuples(st.just("thinking"), st.text(min_size=1, max_size=8)),
    st.tuples(st.just("signature"), st.text(alphabet="abcXYZ=", min_size=1, max_size=6)),
    st.tuples(st.just("text"), st.text(min_size=1, max_size=8)),
    st.tuples(st.just("tool"), st.text(max_size=8)),
    st.tuples(st.just("next_tool"), st.text(max_size=8)),
)


@given(st.lists(_PIECE, max_size=25))
@FAST
def test_any_sequence_of_pieces_renders_well_formed_blocks(pieces: list[tuple[str, str]]) -> None:
    chunks, tool, previous = [], -1, ""
    for kind, value in pieces:
        if kind in ("tool", "next_tool"):
            # a tool call goes on only while nothing else came between (upstreams never go back)
            if kind == "next_tool" or previous not in ("tool", "next_tool"):
                tool += 1
                chunks.append(chunk(tool_delta(tool, value, f"call_{tool}", f"f{tool}")))
            else:
                chunks.append(chunk(tool_delta(tool, value)))
        else:
            key = {"thinking": "reasoning_content", "signature": "reasoning_signature", "text": "content"}[
                kind
            ]
            chunks.append(chunk({key: value}))
        previous = kind
    events = run_stream(chat_sse(*chunks, chunk({}, "stop"), usage_chunk()))
    assert types(events)[0] == "message_start" and types(events)[-2:] == ["message_delta", "message_stop"]
    blocks: list[dict[str, Any]] = []
    for e in events[1:-2]:
        if e["type"] == "content_block_start":
            assert e["index"] == len(blocks)
            blocks.append({**e["content_block"], "open": True, "args": ""})
        else:
            block = blocks[e["index"]]
            assert e["index"] == len(blocks) - 1 and block["open"]
            if e["type"] == "content_block_stop":
                block["open"] = False
            else:
                d = e["delta"]
                field = {"thinking_delta": "thinking", "text_delta": "text", "input_json_delta": "args"}.get(
                    d["type"]
                )
                if field:
                    block[field] += d.get("partial_json", d.get(field))
                else:
                    block["signature"] += d["signature"]
    assert not any(b["open"] for b in blocks)

    def joined(*kinds: str) -> str:
        return "".join(v for k, v in pieces if k in kinds)

    assert "".join(b["thinking"] for b in blocks if b["type"] == "thinking") == joined("thinking")
    assert "".join(b["text"] for b in blocks if b["type"] == "text") == joined("text")
    assert "".join(b["args"] for b in blocks if b["type"] == "tool_use") == joined("tool", "next_tool")
    assert all(
        b["signature"].startswith("llmi1.") or b["signature"] == "" for b in blocks if b["type"] == "thinking"
    )
    stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    assert events[-2]["delta"]["stop_reason"] == stop


# -- stream_of: a whole completion as a stream ------------------------------------------------------


def test_stream_of_renders_the_same_message_as_to_message() -> None:
    completion = {
        "id": "chatcmpl-own",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Done.",
                    "reasoning_content": "Thought.",
                    "reasoning_signature": "SIG",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"x": [1]}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
    }
    events = parse_events(stream_of(completion, MODEL, []))
    message = to_message(completion, MODEL, [])
    assert events[0]["message"]["id"] == message["id"] == "msg_own"
    rebuilt = [dict(e["content_block"]) for e in events if e["type"] == "content_block_start"]
    rebuilt[0]["thinking"], rebuilt[0]["signature"] = (
        deltas(events, 0, "thinking"),
        deltas(events, 0, "signature"),
    )
    rebuilt[1]["text"] = deltas(events, 1, "text")
    rebuilt[2]["input"] = json.loads(deltas(events, 2, "partial_json"))
    assert rebuilt == message["content"]
    assert events[-2]["delta"] == {"stop_reason": message["stop_reason"], "stop_sequence": None}
    assert events[-2]["usage"] == message["usage"]
    assert events[-1] == {"type": "message_stop"}


def test_stream_of_a_plain_answer_without_finish_reason_ends_the_turn() -> None:
    completion = {
        "id": "chatcmpl-1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}}],
    }
    events = parse_events(stream_of(completion, MODEL, []))
    assert types(events) == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[-2]["delta"]["stop_reason"] == "end_turn"


_ODD = (
    st.none() | st.booleans() | st.integers(-2, 3) | st.text(max_size=4) | st.lists(st.integers(), max_size=2)
)
_ODD_CALL = st.fixed_dictionaries(
    {},
    optional={
        "index": _ODD,
        "id": _ODD,
        "function": st.fixed_dictionaries({}, optional={"name": _ODD, "arguments": _ODD}) | _ODD,
    },
)
_ODD_DELTA = st.fixed_dictionaries(
    {},
    optional={
        "content": _ODD,
        "reasoning_content": _ODD,
        "reasoning": _ODD,
        "reasoning_signature": _ODD,
        "refusal": _ODD,
        "tool_calls": st.lists(_ODD_CALL | _ODD, max_size=2) | _ODD,
    },
)
_ODD_CHUNK = st.fixed_dictionaries(
    {},
    optional={
        "id": _ODD,
        "usage": _ODD
        | st.fixed_dictionaries({}, optional={"prompt_tokens": _ODD, "prompt_tokens_details": _ODD}),
        "choices": st.lists(
            st.fixed_dictionaries(
                {}, optional={"index": _ODD, "delta": _ODD_DELTA | _ODD, "finish_reason": _ODD}
            ),
            max_size=2,
        )
        | _ODD,
    },
)


@given(st.lists(_ODD_CHUNK, max_size=8), st.booleans())
@FAST
def test_odd_chunks_never_crash_the_renderer(chunks: list[dict[str, Any]], done: bool) -> None:
    events = run_stream(chat_sse(*chunks, done=done))
    errors = [e for e in events if e["type"] == "error"]
    assert len(errors) <= 1 and (not errors or events[-1] is errors[0])
    assert not any(
        e["error"]["message"].startswith("could not render") and "went back" not in e["error"]["message"]
        for e in errors
    )
    assert errors or types(events)[-1] == "message_stop"

"""The guards on a stream, around the real OpenRouter passthrough: held tool-call arguments go out whole
and repaired at the end of each call, whole calls and plain text pass byte for byte, a loop is cut
with a note, a stop and [DONE]; and none of it depends on where the network split the stream."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from addons.backends.openrouter import CheckedPassthrough
from addons.guards.call import REPETITION, CallGuards
from addons.guards.repetition import RepetitionLimits
from addons.guards.stream import GuardedStream, guarded
from addons.guards.tool_repair import ToolSchemas
from addons.records import CallRecord
from tests.fakes.fake_openrouter import stream_events
from tests.long_texts import long_texts, looping, pieces
from translators.openai.assemble import assemble_completion
from translators.sse import SSEDecoder

MODEL = "openai/gpt-4o-mini"
LIMITS = RepetitionLimits(5, 3000, 16000)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "lines": {"type": "integer"}},
                "required": ["path"],
            },
        },
    }
    for name in ("read_file", "write_file")
]


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    obj = {
        "id": "gen-1",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def call_events(calls: list[tuple[str, list[str]]], finish_apart: bool = True) -> list[bytes]:
    """Tool calls streamed as OpenAI does: id and name first, then the argument text in pieces."""
    out = [chunk({"role": "assistant", "content": None})]
    for i, (name, parts) in enumerate(calls):
        head = {
            "index": i,
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        out.append(chunk({"tool_calls": [head]}))
        out += [chunk({"tool_calls": [{"index": i, "function": {"arguments": p}}]}) for p in parts]
    out.append(chunk({}, "tool_calls"))
    return [*out, b"data: [DONE]\n\n"]


def make(loop: bool = True, tools: list[Any] | None = TOOLS) -> tuple[GuardedStream, CallRecord]:
    record = CallRecord(session="s", stream=True)
    schemas = ToolSchemas.of({"tools": tools}, record) if tools is not None else None
    guards = CallGuards(loop=loop, limits=LIMITS, tool_loop_repeats=7, tools=schemas, prefix="!/")
    stream = guarded(CheckedPassthrough(), guards, record)
    assert isinstance(stream, GuardedStream)
    return stream, record


def run(stream: GuardedStream, events: list[bytes], splits: list[int] | None = None) -> list[bytes]:
    raw = b"".join(events)
    cuts = sorted(set(splits or [])) if splits else [len(e) for e in events]
    out, at = [], 0
    if splits is None:
        for e in events:
            out += stream.feed(e)
    else:
        for c in [*cuts, len(raw)]:
            out += stream.feed(raw[at:c])
            at = max(at, c)
    return out + stream.finish()


def deltas(out: list[bytes]) -> list[dict[str, Any]]:
    dec = SSEDecoder()
    events = [json.loads(e.data) for e in dec.feed(b"".join(out)) if e.data != "[DONE]"]
    return [e["choices"][0] for e in events if e.get("choices")]


def test_text_passes_byte_for_byte() -> None:
    events = stream_events(long_texts()["README (markdown, tables, code)"][:20000], MODEL, 400)
    stream, record = make()
    assert b"".join(run(stream, events)) == b"".join(events)
    assert record.repairs == 0
    assert not stream.cut and record.guards == [] and record.repairs == 0


def test_arguments_are_held_and_sent_repaired_at_the_end_of_each_call() -> None:
    calls = [("read_file", ['{"path": "a.py', '", "lines": 3', ",}"]), ("write_file", ["{'path': 'b.py'}"])]
    stream, record = make()
    choices = deltas(run(stream, call_events(calls)))
    tool_deltas = [
        (c["delta"]["tool_calls"][0], c["finish_reason"]) for c in choices if c["delta"].get("tool_calls")
    ]
    # call 0's head, its arguments in one piece, then call 1's head and its arguments; the finish last.
    assert [(t["index"], t.get("id"), t["function"].get("arguments")) for t, _ in tool_deltas] == [
        (0, "call_0", ""),
        (0, None, '{"path":"a.py","lines":3}'),
        (1, "call_1", ""),
        (1, None, '{"path":"b.py"}'),
    ]
    assert choices[-1]["finish_reason"] == "tool_calls" and not choices[-1]["delta"]
    assert record.repairs == 2


def test_arguments_that_are_valid_unrepairable_or_unfit_pass_as_sent() -> None:
    sent = [
        ("read_file", ['{"path": ', '"ok.py"}']),  # valid once whole
        ("read_file", ['{"path": "x.py"', " oops}"]),  # no rule reads it
        ("read_file", ['{"lines": 3,}']),  # repairable, but `path` is required
        ("no_such_tool", ['{"a": 1,}']),  # no schema to check a repair against
    ]
    stream, record = make()
    assembled = assemble_completion(b"".join(run(stream, call_events(sent))))
    args = [c["function"]["arguments"] for c in assembled["choices"][0]["message"]["tool_calls"]]
    assert args == ["".join(parts) for _, parts in sent]
    assert record.repairs == 0


def test_a_whole_call_passes_untouched_even_with_its_finish() -> None:
    """As Gemini's calls arrive: id, name, arguments and finish in one chunk."""
    call = {
        "index": 0,
        "id": "c1",
        "type": "function",
        "function": {"name": "read_file", "arguments": '{"path": "a"}'},
    }
    events = [chunk({"role": "assistant", "tool_calls": [call]}, "tool_calls"), b"data: [DONE]\n\n"]
    stream, record = make()
    assert b"".join(run(stream, events)) == b"".join(events)
    assert record.repairs == 0


def test_held_arguments_go_out_before_a_finish_that_carries_a_delta_and_usage() -> None:
    head = {"index": 0, "id": "c1", "type": "function", "function": {"name": "read_file", "arguments": ""}}
    last = chunk(
        {"tool_calls": [{"index": 0, "function": {"arguments": '"a"}'}}]},
        "tool_calls",
        usage={"total_tokens": 9},
    )
    events = [
        chunk({"tool_calls": [head]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"path": '}}]}),
        last,
    ]
    stream, _ = make()
    out = run(stream, [*events, b"data: [DONE]\n\n"])
    choices = deltas(out)
    assert choices[-2]["delta"]["tool_calls"][0]["function"]["arguments"] == '{"path": "a"}'
    assert choices[-1]["finish_reason"] == "tool_calls"
    assert json.loads(b"".join(out).split(b"data: ")[-2])["usage"] == {"total_tokens": 9}


def test_a_stream_cut_off_upstream_still_gets_its_arguments_before_the_error() -> None:
    events = call_events([("read_file", ['{"path": "a.py",'])])[:-2]  # no finish, no [DONE]
    stream, record = make()
    out = b"".join(run(stream, events))
    assert out.index(b'{\\"path\\":\\"a.py\\"}') < out.index(b"upstream_truncated")
    assert record.repairs == 1


@pytest.mark.parametrize("channel", ["content", "reasoning_content", "reasoning"])
def test_a_loop_is_cut_with_a_note_a_stop_and_done(channel: str) -> None:
    text = looping("I should double-check the configuration file once more.\n", 400)
    events = [chunk({channel: p}) for p in pieces(text)]
    stream, record = make(tools=None)
    out: list[bytes] = []
    fed = 0
    for e in events:
        out += stream.feed(e)
        fed += 1
        if stream.cut:
            break
    assert stream.cut and fed < len(events) // 2  # caught early, not at the end
    assert stream.feed(events[fed]) == [] and stream.finish() == []
    body = b"".join(out)
    assert body.endswith(b"data: [DONE]\n\n")
    choices = deltas(out)
    assert choices[-1] == {"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}
    note = choices[-2]["delta"]["content"]
    assert "llm-intercept: output stopped" in note and "!/set(loop-guard=off)" in note
    assert ("reasoning" in note) == (channel != "content")
    assert record.guards == [REPETITION]


def test_without_guards_the_translator_is_not_wrapped() -> None:
    inner = CheckedPassthrough()
    record = CallRecord(session="s", stream=True)
    off = CallGuards(loop=False, limits=LIMITS, tool_loop_repeats=7, tools=None, prefix="!/")
    assert guarded(inner, off, record) is inner and guarded(inner, None, record) is inner


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 3000), max_size=12), st.booleans())
def test_where_the_network_splits_the_stream_changes_nothing(splits: list[int], with_text: bool) -> None:
    calls = [("read_file", ['{"path": "a.py', '", "lines": 3', ",}"]), ("write_file", ['{"path": "b"}'])]
    events = call_events(calls)
    if with_text:
        events = [*stream_events("Let me look. " * 30, MODEL, 20)[:-2], *events[1:]]
    whole, _ = make()
    split, _ = make()
    expected = assemble_completion(b"".join(run(whole, events)))
    got = assemble_completion(b"".join(run(split, events, splits)))
    assert got == expected
    args = [c["function"]["arguments"] for c in got["choices"][0]["message"]["tool_calls"]]
    assert args == ['{"path":"a.py","lines":3}', '{"path": "b"}']


def compact(delta: dict[str, Any], finish: str | None = None) -> bytes:
    """A chunk as OpenRouter and the proxy's translators write it (no spaces): plain text deltas take the
    guard's fast path, read without parsing the event."""
    obj = {"id": "gen-1", "object": "chat.completion.chunk", "created": 7, "model": MODEL,
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_the_fast_path_reads_any_text_as_parsing_would(text: str) -> None:
    stream, _ = make()
    stream.feed(compact({"role": "assistant", "content": ""}))
    piece = compact({"content": text})
    assert stream._plain_text(piece) == text
    assert stream._plain_text(compact({"content": text}, "stop")) is None  # a finish is parsed


def test_a_loop_in_compact_chunks_is_cut_like_one_in_spaced_chunks() -> None:
    text = "Let me open the configuration file once more to be sure it is right.\n" * 60
    parts = [text[i : i + 17] for i in range(0, len(text), 17)]
    outs = []
    for make_chunk in (chunk, compact):
        stream, record = make()
        events = [
            make_chunk({"role": "assistant", "content": ""}),
            *(make_chunk({"content": p}) for p in parts),
        ]
        out = run(stream, [*events, make_chunk({}, "stop"), b"data: [DONE]\n\n"])
        assert stream.cut and record.guards == [REPETITION]
        outs.append("".join(d.get("content") or "" for d in deltas(out)))
    assert outs[0] == outs[1]

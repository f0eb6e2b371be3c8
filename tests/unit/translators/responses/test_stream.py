"""Internal chunk SSE -> Responses SSE: event order, items, endings, and any split of the bytes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.translators.responses.support import (
    FAST,
    SEALER,
    check_response,
    chunk,
    counter_ids,
    parse_events,
    request,
    run,
    sse,
    types,
    unseal,
    usage,
)
from translators.responses import ResponsesStream, output_as_chat
from translators.sse import encode_data

TERMINAL = {"response.completed", "response.incomplete", "response.failed"}
HEAD = ["response.created", "response.in_progress"]
TOOLS = [
    {"type": "function", "name": "exec_command"},
    {"type": "custom", "name": "apply_patch"},
    {
        "type": "namespace",
        "name": "multi_agent_v1",
        "description": "",
        "tools": [{"type": "function", "name": "spawn_agent"}],
    },
]
TEXT = sse(
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Hel"}),
    chunk({"content": "lo"}),
    chunk({}, "stop"),
    {"choices": [], "usage": usage()},
)


def call(index: int, call_id: str | None, name: str | None, args: str) -> dict[str, Any]:
    fn = {"arguments": args} | ({"name": name} if name else {})
    return {"index": index, **({"id": call_id, "type": "function"} if call_id else {}), "function": fn}


def test_text_answer() -> None:
    events, stream = run(TEXT)
    assert types(events) == [
        *HEAD,
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["delta"] for e in events if e["type"] == "response.output_text.delta"] == ["Hel", "lo"]
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    final = check_response(events[-1]["response"])
    assert final == stream.response and final["status"] == "completed" and final["id"] == "resp_1"
    assert final["output"] == [
        {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}],
        }
    ]
    assert final["usage"] == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 1},
        "total_tokens": 15,
    }


def test_reasoning_summary_then_text_with_a_sealed_signature() -> None:
    raw = sse(
        chunk({"role": "assistant", "reasoning_signature": "SIG"}),
        chunk({"reasoning_content": "Let me "}),
        chunk({"reasoning": "think."}),  # OpenRouter's own field reads the same
        chunk({"content": "Answer"}),
        chunk({}, "stop"),
    )
    events, stream = run(raw)
    assert types(events)[2:9] == [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
    ]
    reasoning, message = stream.response["output"]
    assert reasoning["id"] == "rs_1" and reasoning["summary"] == [
        {"type": "summary_text", "text": "Let me think."}
    ]
    assert unseal(reasoning["encrypted_content"]) == {"signature": "SIG"}
    assert message["content"][0]["text"] == "Answer" and events[-1]["type"] == "response.completed"


def test_function_calls_with_split_arguments() -> None:
    raw = sse(
        chunk(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [call(0, "call_a", "exec_command", '{"cmd"')],
            }
        ),
        chunk({"tool_calls": [call(0, None, None, ':"ls"}')]}),
        chunk({"tool_calls": [call(1, "call_b", "spawn_agent", "{}")]}),
        chunk({}, "tool_calls"),
    )
    events, stream = run(raw, request({"stream": True, "tools": TOOLS}))
    deltas = [
        (e["item_id"], e["delta"]) for e in events if e["type"] == "response.function_call_arguments.delta"
    ]
    assert deltas == [("fc_1", '{"cmd"'), ("fc_1", ':"ls"}'), ("fc_2", "{}")]
    dones = [e["arguments"] for e in events if e["type"] == "response.function_call_arguments.done"]
    assert dones == ['{"cmd":"ls"}', "{}"]
    first, second = stream.response["output"]
    assert first == {
        "id": "fc_1",
        "type": "function_call",
        "status": "completed",
        "call_id": "call_a",
        "name": "exec_command",
        "arguments": '{"cmd":"ls"}',
    }
    assert second["name"] == "spawn_agent" and second["namespace"] == "multi_agent_v1"
    added = [e["item"] for e in events if e["type"] == "response.output_item.added"]
    assert added[0]["status"] == "in_progress" and added[0]["arguments"] == ""
    done_order = [e["output_index"] for e in events if e["type"] == "response.output_item.done"]
    assert done_order == [0, 1]


def test_custom_tool_calls_render_their_input() -> None:
    args = json.dumps({"input": "*** Begin Patch\n*** End Patch"})
    raw = sse(
        chunk({"tool_calls": [call(0, "call_p", "apply_patch", args[:9])]}),
        chunk({"tool_calls": [call(0, None, None, args[9:])]}),
        chunk({}, "tool_calls"),
    )
    events, stream = run(raw, request({"stream": True, "tools": TOOLS}))
    assert "response.function_call_arguments.delta" not in types(events)
    assert [e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta"] == [
        "*** Begin Patch\n*** End Patch"
    ]
    (item,) = stream.response["output"]
    assert item["type"] == "custom_tool_call" and item["input"] == "*** Begin Patch\n*** End Patch"
    assert item["call_id"] == "call_p" and item["name"] == "apply_patch"
    check_response(stream.response)


def test_an_error_event_mid_way_fails_the_response_last() -> None:
    error = {"error": {"message": "upstream broke", "type": "api_error", "param": None, "code": "x"}}
    raw = sse(chunk({"content": "partial"}), error, chunk({"content": "never"}), done=False)
    events, stream = run(raw)
    assert types(events)[-2:] == ["error", "response.failed"] and "never" not in json.dumps(events)
    assert events[-2]["message"] == "upstream broke" and events[-2]["code"] == "server_error"
    final = check_response(events[-1]["response"])
    assert final["status"] == "failed" and final["error"] == {
        "code": "server_error",
        "message": "upstream broke",
    }
    assert final["output"] == [] and stream.failed


def test_a_context_length_error_carries_the_code_codex_compacts_on() -> None:
    message = (
        "This model's maximum context length is 1000 tokens. However, your messages resulted in 2000 tokens."
    )
    raw = sse(
        {"error": {"message": message, "type": "invalid_request_error", "code": "context_length_exceeded"}}
    )
    events, _ = run(raw)
    assert events[-1]["response"]["error"]["code"] == "context_length_exceeded"


def test_a_stream_cut_before_it_finished_fails() -> None:
    events, _stream = run(sse(chunk({"content": "Hel"}), done=False))
    assert types(events)[-2:] == ["error", "response.failed"]
    assert "ended before it finished" in events[-1]["response"]["error"]["message"]
    empty, _ = run(b"")
    assert types(empty) == [*HEAD, "error", "response.failed"]


def test_an_unreadable_event_fails() -> None:
    events, _ = run(b"data: {not json\n\n")
    assert types(events)[-1] == "response.failed" and "unreadable" in events[-2]["message"]


def test_done_ends_the_stream_cleanly() -> None:
    events, _ = run(sse(chunk({"content": "hi"})))
    assert events[-1]["type"] == "response.completed"


def test_length_and_content_filter_end_incomplete() -> None:
    for reason, detail in (("length", "max_output_tokens"), ("content_filter", "content_filter")):
        events, _ = run(sse(chunk({"content": "cut"}), chunk({}, reason)))
        final = check_response(events[-1]["response"])
        assert events[-1]["type"] == "response.incomplete" and final["status"] == "incomplete"
        assert final["incomplete_details"] == {"reason": detail}


def test_a_signature_that_arrives_with_text_gets_its_own_reasoning_item() -> None:
    raw = sse(
        chunk({"content": "Hi"}), chunk({"reasoning_signature": "LATE", "content": "!"}), chunk({}, "stop")
    )
    events, stream = run(raw)
    message, reasoning = stream.response["output"]
    assert message["content"][0]["text"] == "Hi!" and reasoning["summary"] == []
    assert unseal(reasoning["encrypted_content"]) == {"signature": "LATE"}
    assert types(events)[-3:] == [
        "response.output_item.added",
        "response.output_item.done",
        "response.completed",
    ]


def test_without_seal_the_reasoning_item_is_still_there_but_carries_nothing() -> None:
    _, stream = run(sse(chunk({"reasoning_signature": "S", "content": "x"}), chunk({}, "stop")), seal=None)
    assert stream.response["output"][0] == {"id": "rs_1", "type": "reasoning", "summary": []}


def test_the_output_comes_back_as_the_same_chat_turn() -> None:
    req = request({"stream": True, "tools": TOOLS})
    raw = sse(
        chunk({"reasoning_signature": "SIG", "reasoning_content": "plan"}),
        chunk({"content": "Doing it."}),
        chunk(
            {
                "tool_calls": [
                    call(0, "c1", "spawn_agent", "{}"),
                    call(1, "c2", "apply_patch", '{"input":"p"}'),
                ]
            }
        ),
        chunk({}, "tool_calls"),
    )
    _, stream = run(raw, req)
    assert output_as_chat(stream.response["output"], req, unseal) == [
        {
            "role": "assistant",
            "content": "Doing it.",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "spawn_agent", "arguments": "{}"}},
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "apply_patch", "arguments": '{"input":"p"}'},
                },
            ],
            "reasoning_content": "plan",
            "reasoning_signature": "SIG",
        }
    ]


RICH = sse(
    chunk({"role": "assistant", "reasoning_signature": "SIG", "reasoning_content": "Thinking ✓"}),
    chunk({"content": "Résumé: "}),
    chunk({"content": "done"}),
    chunk({"tool_calls": [call(0, "c1", "exec_command", '{"cmd":')]}),
    chunk({"tool_calls": [call(0, None, None, '"ls"}')]}),
    chunk({"tool_calls": [call(1, "c2", "apply_patch", '{"input":"x"}')]}),
    chunk({}, "tool_calls"),
    {"choices": [], "usage": usage()},
)


def render(raw: bytes, bounds: list[int], crlf: bool = False) -> list[dict[str, Any]]:
    stream = ResponsesStream(
        request({"stream": True, "tools": TOOLS}),
        "resp_1",
        1,
        lambda p: "sealed:" + json.dumps(p),
        ids=counter_ids(),
    )
    if crlf:
        raw = raw.replace(b"\n", b"\r\n")
    out: list[bytes] = []
    for a, b in zip([0, *bounds], [*bounds, len(raw)], strict=True):
        out += stream.feed(raw[a:b])
    return parse_events(out + stream.finish())


@FAST
@given(st.data())
def test_any_split_of_the_upstream_bytes_gives_the_same_events(data: st.DataObject) -> None:
    crlf = data.draw(st.booleans())
    raw = b": OPENROUTER PROCESSING\n\n" + RICH
    size = len(raw.replace(b"\n", b"\r\n")) if crlf else len(raw)
    bounds = sorted(data.draw(st.sets(st.integers(1, size - 1), max_size=12)))
    assert render(raw, bounds, crlf) == render(RICH, [])


@FAST
@given(
    st.lists(st.binary(max_size=40) | st.sampled_from([TEXT[:50], b"data: [DONE]\n\n", b"\n\n"]), max_size=6)
)
def test_any_bytes_end_in_exactly_one_terminal_event(pieces: list[bytes]) -> None:
    stream = ResponsesStream(request({"stream": True}), "resp_1", 1, SEALER.seal, ids=counter_ids())
    out = [b for piece in pieces for b in stream.feed(piece)] + stream.finish()
    events = parse_events(out)
    assert [e["type"] for e in events].count("error") <= 1
    assert sum(e["type"] in TERMINAL for e in events) == 1 and events[-1]["type"] in TERMINAL
    assert stream.response == events[-1]["response"]


def test_a_rendering_bug_still_ends_in_response_failed(monkeypatch: Any) -> None:
    stream = ResponsesStream(request({"stream": True}), "resp_1", 1, None, ids=counter_ids())
    monkeypatch.setattr(stream, "_text", lambda _t: 1 / 0)
    events = parse_events(stream.feed(encode_data(chunk({"content": "x"}))) + stream.finish())
    assert (
        types(events) == [*HEAD, "error", "response.failed"] and "division by zero" in events[-2]["message"]
    )

"""translators/anthropic/response.py (+ answer.py): chat.completion -> Messages `message`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.translators.anthropic.support import MODEL
from translators.anthropic import to_message
from translators.anthropic.response import tool_input


def completion(
    message: dict[str, Any], finish: str | None = "stop", usage: Any = None, **choice: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-xyz",
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish, **choice}
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def call(name: str, arguments: Any, id_: str | None = "call_1") -> dict[str, Any]:
    return {"id": id_, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_full_message_shape_and_block_order() -> None:
    msg = to_message(
        completion(
            {
                "content": "Reading it.",
                "reasoning_content": "I should read.",
                "reasoning_signature": "GEMSIG",
                "tool_calls": [call("Read", '{"path": "a.txt"}'), call("Bash", '{"c": "ls"}', "call_2")],
            },
            "tool_calls",
            {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
        ),
        MODEL,
        [],
    )
    assert msg == {
        "id": "msg_xyz",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [
            {"type": "thinking", "thinking": "I should read.", "signature": "llmi1.GEMSIG"},
            {"type": "text", "text": "Reading it."},
            {"type": "tool_use", "id": "call_1", "name": "Read", "input": {"path": "a.txt"}},
            {"type": "tool_use", "id": "call_2", "name": "Bash", "input": {"c": "ls"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 120,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 30,
        },
    }


@pytest.mark.parametrize(
    ("finish", "has_tools", "reason"),
    [
        ("stop", False, "end_turn"),
        ("length", False, "max_tokens"),
        ("tool_calls", True, "tool_use"),
        ("function_call", True, "tool_use"),
        ("tool_calls", False, "end_turn"),  # said so, but sent no call: nothing to wait for
        ("content_filter", False, "refusal"),
        (None, False, "end_turn"),
        ("something_new", False, "end_turn"),
        ("stop", True, "tool_use"),  # tool calls make it tool_use whatever the upstream said
        ("length", True, "max_tokens"),  # ...unless the answer was cut: the arguments may be too
        ("content_filter", True, "refusal"),
    ],
)
def test_stop_reasons(finish: str | None, has_tools: bool, reason: str) -> None:
    message: dict[str, Any] = {"content": "x"}
    if has_tools:
        message["tool_calls"] = [call("f", "{}")]
    msg = to_message(completion(message, finish), MODEL, ["END"])
    assert (msg["stop_reason"], msg["stop_sequence"]) == (reason, None)


@pytest.mark.parametrize(
    ("choice", "stops", "expected"),
    [
        ({"stop_reason": "END"}, ["###", "END"], ("stop_sequence", "END")),
        ({"stop_reason": "OTHER"}, ["END"], ("end_turn", None)),
        ({"stop_reason": 50256}, ["END"], ("end_turn", None)),  # a token id, not a sequence
        ({"native_finish_reason": "stop_sequence"}, ["END"], ("stop_sequence", "END")),
        ({"native_finish_reason": "stop_sequence"}, ["A", "B"], ("end_turn", None)),  # which one? unknown
        ({}, ["END"], ("end_turn", None)),  # never guessed
    ],
)
def test_stop_sequence_is_reported_only_when_known(
    choice: dict[str, Any], stops: list[str], expected: tuple[str, str | None]
) -> None:
    msg = to_message(completion({"content": "x"}, "stop", **choice), MODEL, stops)
    assert (msg["stop_reason"], msg["stop_sequence"]) == expected


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (
            {
                "prompt_tokens": 100,
                "completion_tokens": 40,
                "prompt_tokens_details": {"cached_tokens": 30, "cache_write_tokens": 20},
                "completion_tokens_details": {"reasoning_tokens": 25},
            },
            {
                "input_tokens": 50,
                "cache_creation_input_tokens": 20,
                "cache_read_input_tokens": 30,
                "output_tokens": 40,
                "output_tokens_details": {"thinking_tokens": 25},
            },
        ),
        (
            {"prompt_tokens": 10, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 10}},
            {
                "input_tokens": 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 10,
                "output_tokens": 1,
            },
        ),
        (  # inconsistent upstream counts never go negative
            {"prompt_tokens": 5, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 9}},
            {
                "input_tokens": 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 9,
                "output_tokens": 2,
            },
        ),
        (
            {"prompt_tokens": None, "completion_tokens": "7", "prompt_tokens_details": None},
            {
                "input_tokens": 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 0,
            },
        ),
    ],
)
def test_usage_has_anthropic_meaning(usage: dict[str, Any], expected: dict[str, Any]) -> None:
    assert to_message(completion({"content": "x"}, usage=usage), MODEL, [])["usage"] == expected


def test_missing_usage_is_zero() -> None:
    assert to_message(completion({"content": "x"}), MODEL, [])["usage"] == {
        "input_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 0,
    }


@pytest.mark.parametrize(
    ("message", "content"),
    [
        (
            {"content": None, "reasoning_signature": "S"},
            [{"type": "thinking", "thinking": "", "signature": "llmi1.S"}],
        ),
        (
            {"content": "", "reasoning": "OpenRouter thoughts"},
            [{"type": "thinking", "thinking": "OpenRouter thoughts", "signature": ""}],
        ),
        ({"content": ""}, []),
        (
            {"content": None, "refusal": "I can't help with that."},
            [{"type": "text", "text": "I can't help with that."}],
        ),
        (
            {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            [{"type": "text", "text": "ab"}],
        ),
    ],
)
def test_content_block_forms(message: dict[str, Any], content: list[dict[str, Any]]) -> None:
    assert to_message(completion(message), MODEL, [])["content"] == content


def test_message_ids() -> None:
    assert to_message(completion({"content": "x"}), MODEL, [])["id"] == "msg_xyz"
    assert to_message({**completion({"content": "x"}), "id": "gen-123"}, MODEL, [])["id"] == "msg_gen-123"
    a, b = (to_message({"choices": []}, MODEL, [])["id"] for _ in range(2))
    assert a.startswith("msg_") and b.startswith("msg_") and a != b


def test_tool_call_without_id_gets_one() -> None:
    msg = to_message(
        completion({"content": None, "tool_calls": [call("f", "{}", None)]}, "tool_calls"), MODEL, []
    )
    assert msg["content"][0]["id"].startswith("toolu_") and len(msg["content"][0]["id"]) > len("toolu_")


def test_empty_completion_is_an_empty_end_turn_message() -> None:
    msg = to_message({}, MODEL, [])
    assert (msg["content"], msg["stop_reason"], msg["stop_sequence"]) == ([], "end_turn", None)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ({"a": 1}, {"a": 1}),
        ("", {}),
        ("  ", {}),
        (None, {}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('```\n{"a": 1}\n```', {"a": 1}),
        ('"{\\"a\\": 1}"', {"a": 1}),  # double-encoded
        ('{"a": 1', {"_raw": '{"a": 1'}),  # cut short: kept recoverable
        ("[1, 2]", {"_raw": "[1, 2]"}),
        ("not json", {"_raw": "not json"}),
        ('"just a string"', {"_raw": '"just a string"'}),
    ],
)
def test_tool_arguments_are_parsed_leniently_and_kept_when_not_an_object(
    arguments: Any, expected: Any
) -> None:
    assert tool_input(arguments) == expected

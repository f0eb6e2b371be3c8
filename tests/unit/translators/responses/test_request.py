"""A Responses request -> the internal chat request: fields, options, Codex's own body."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.translators.responses.support import check_item, counter_ids, request, unseal
from translators.openai.types import RequestError
from translators.responses import parse, to_chat

CODEX_BODY: dict[str, Any] = {
    "model": "gpt-5.1-codex",
    "instructions": "You are Codex.",
    "input": [
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "<permissions>"}],
        },
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<skills>"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<environment>"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "say hi"}]},
    ],
    "tools": [
        {
            "type": "function",
            "name": "exec_command",
            "description": "Runs a command",
            "strict": False,
            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]},
        },
        {
            "type": "namespace",
            "name": "multi_agent_v1",
            "description": "Sub-agents",
            "tools": [
                {"type": "function", "name": "spawn_agent", "strict": False, "parameters": {"type": "object"}}
            ],
        },
        {"type": "web_search", "external_web_access": False},
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "reasoning": {"summary": "auto"},
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "0199-session",
    "client_metadata": {"x": "y"},
}


def test_codex_request_maps_to_a_chat_stream() -> None:
    req = to_chat(CODEX_BODY, None, unseal, ids=counter_ids())
    assert req.model == "gpt-5.1-codex" and req.stream and req.body is CODEX_BODY
    assert req.chat["messages"] == [
        {"role": "system", "content": "You are Codex."},
        {"role": "system", "content": [{"type": "text", "text": "<permissions>"}]},
        {"role": "system", "content": [{"type": "text", "text": "<skills>"}]},
        {"role": "user", "content": [{"type": "text", "text": "<environment>"}]},
        {"role": "user", "content": [{"type": "text", "text": "say hi"}]},
    ]
    assert req.chat["stream"] is True and req.chat["stream_options"] == {"include_usage": True}
    assert [t["function"]["name"] for t in req.chat["tools"]] == ["exec_command", "spawn_agent"]
    assert req.chat["tool_choice"] == "auto" and req.chat["parallel_tool_calls"] is True
    assert req.dropped_tools == ["web_search"] and req.ignored == []
    assert req.names.ref("spawn_agent").namespace == "multi_agent_v1"
    for key in ("store", "include", "prompt_cache_key", "client_metadata", "reasoning", "instructions"):
        assert key not in req.chat  # echoed in the answer, never sent upstream
    assert req.input_messages == req.chat["messages"][1:]  # what the store keeps: no instructions
    assert [i["id"] for i in req.input_items] == ["msg_1", "msg_2", "msg_3", "msg_4"]
    for item in req.input_items:
        check_item(item)


def test_a_string_input_is_one_user_message() -> None:
    req = request({"input": "hello"})
    assert req.chat == {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "hello"}],
        "stream": False,
    }
    assert req.input_items == [
        {
            "status": "completed",
            "type": "message",
            "role": "user",
            "id": "msg_1",
            "content": [{"type": "input_text", "text": "hello"}],
        }
    ]
    check_item(req.input_items[0])


def test_history_goes_between_instructions_and_input() -> None:
    history = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "answer"}]
    req = request({"instructions": "Be brief.", "input": "second", "previous_response_id": "resp_0"}, history)
    assert [m["content"] for m in req.chat["messages"]] == ["Be brief.", "first", "answer", "second"]
    assert req.input_messages == [{"role": "user", "content": "second"}]  # the history is the caller's


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"max_output_tokens": 100}, {"max_tokens": 100}),
        ({"temperature": 0.2, "top_p": 0.9}, {"temperature": 0.2, "top_p": 0.9}),
        ({"reasoning": {"effort": "low", "summary": "auto"}}, {"reasoning": {"effort": "low"}}),
        ({"reasoning": {"effort": "minimal"}}, {"reasoning": {"effort": "minimal"}}),
        ({"reasoning": {"effort": "xhigh"}}, {"reasoning": {"effort": "high"}}),
        ({"reasoning": {"effort": "none"}}, {"reasoning": {"enabled": False}}),
        ({"reasoning": {"summary": "detailed"}}, {}),
        ({"text": {"format": {"type": "text"}, "verbosity": "low"}}, {}),
        ({"text": {"format": {"type": "json_object"}}}, {"response_format": {"type": "json_object"}}),
        (
            {
                "text": {
                    "format": {
                        "type": "json_schema",
                        "name": "r",
                        "schema": {"type": "object"},
                        "strict": True,
                    }
                }
            },
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "r", "schema": {"type": "object"}, "strict": True},
                }
            },
        ),
        ({"metadata": {"a": "b"}, "user": "u", "store": True, "truncation": "auto"}, {}),
        ({"tools": [{"type": "web_search"}], "tool_choice": "required", "parallel_tool_calls": False}, {}),
    ],
)
def test_options_map_to_chat_fields(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    req = request({"input": "x", **fields})
    extra = {k: v for k, v in req.chat.items() if k not in ("model", "messages", "stream")}
    assert extra == expected


def test_stream_adds_include_usage_and_unknown_fields_are_listed() -> None:
    req = request({"input": "x", "stream": True, "frobnicate": 1, "top_logprobs": 2})
    assert req.chat["stream_options"] == {"include_usage": True}
    assert req.ignored == ["frobnicate", "top_logprobs"]


@pytest.mark.parametrize(
    ("raw", "message", "param"),
    [
        (b"", "empty", None),
        (b"{nope", "not valid JSON", None),
        (b"[1]", "must be a JSON object", None),
        (b"[" * 100_000, "nested too deeply", None),
        (b'{"input": "x"}', "Missing required parameter: 'model'", "model"),
        (b'{"model": "m", "stream": "yes"}', "Invalid type for 'stream'", "stream"),
        (b'{"model": "m", "temperature": true}', "Invalid type for 'temperature'", "temperature"),
        (b'{"model": "m", "max_output_tokens": 1.5}', "Invalid type", "max_output_tokens"),
        (b'{"model": "m", "conversation": "conv_1"}', "use previous_response_id", "conversation"),
        (b'{"model": "m", "prompt": {"id": "p"}}', "prompt templates", "prompt"),
        (b'{"model": "m", "background": true}', "background", "background"),
    ],
)
def test_parse_refuses_unusable_bodies(raw: bytes, message: str, param: str | None) -> None:
    with pytest.raises(RequestError, match=message) as err:
        parse(raw)
    assert err.value.param == param and err.value.status == 400


def test_parse_returns_the_body() -> None:
    assert parse(json.dumps(CODEX_BODY).encode()) == CODEX_BODY


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"input": 3}, "input"),
        ({"reasoning": {"effort": "extreme"}}, "reasoning.effort"),
        ({"text": {"format": {"type": "xml"}}}, "text.format.type"),
        ({"text": {"format": {"type": "json_schema", "name": "r"}}}, "text.format"),
        (
            {
                "tool_choice": {"type": "function", "name": "nope"},
                "tools": [{"type": "function", "name": "f"}],
            },
            "tool_choice",
        ),
    ],
)
def test_to_chat_refuses_unusable_fields(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(RequestError) as err:
        request(fields)
    assert err.value.param == param

"""A whole internal answer -> the `response` object (and the same answer as an event stream)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.translators.responses.support import (
    SEALER,
    check_response,
    counter_ids,
    parse_events,
    request,
    unseal,
    usage,
)
from tests.unit.translators.responses.test_request import CODEX_BODY
from translators.responses import output_as_chat, stream_of, to_chat, to_response


def completion(message: dict[str, Any], finish: str = "stop", **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
        "usage": usage(),
        **extra,
    }


TOOLS = [
    {"type": "function", "name": "exec_command", "parameters": {"type": "object"}},
    {"type": "custom", "name": "apply_patch", "description": "patch"},
]
FULL = completion(
    {
        "content": "Sure.",
        "reasoning_content": "The user wants a patch.",
        "reasoning_signature": "SIG",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "exec_command", "arguments": '{"cmd":"ls"}'},
            },
            {
                "id": "c2",
                "type": "function",
                "function": {"name": "apply_patch", "arguments": '{"input":"P"}'},
            },
        ],
    },
    "tool_calls",
)


def render(
    answer: dict[str, Any], body: dict[str, Any] | None = None, seal: Any = SEALER.seal
) -> dict[str, Any]:
    req = request({"input": "x", "tools": TOOLS, **(body or {})})
    return check_response(to_response(answer, req, "resp_9", 1700000000, seal, ids=counter_ids()))


def test_a_full_answer_renders_reasoning_message_and_calls_in_order() -> None:
    resp = render(FULL)
    assert resp["status"] == "completed" and resp["error"] is None and resp["incomplete_details"] is None
    reasoning, message, fn, custom = resp["output"]
    assert reasoning["type"] == "reasoning" and reasoning["id"].startswith("rs_")
    assert reasoning["summary"] == [{"type": "summary_text", "text": "The user wants a patch."}]
    assert unseal(reasoning["encrypted_content"]) == {"signature": "SIG"}
    assert message == {
        "id": "msg_2",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Sure.", "annotations": [], "logprobs": []}],
    }
    assert fn == {
        "id": "fc_3",
        "type": "function_call",
        "status": "completed",
        "call_id": "c1",
        "name": "exec_command",
        "arguments": '{"cmd":"ls"}',
    }
    assert custom == {
        "id": "fc_4",
        "type": "custom_tool_call",
        "status": "completed",
        "call_id": "c2",
        "name": "apply_patch",
        "input": "P",
    }
    assert resp["usage"]["input_tokens"] == 10 and resp["usage"]["output_tokens_details"] == {
        "reasoning_tokens": 1
    }


def test_without_seal_there_is_no_encrypted_content() -> None:
    reasoning = render(FULL, seal=None)["output"][0]
    assert (
        "encrypted_content" not in reasoning and reasoning["summary"][0]["text"] == "The user wants a patch."
    )


def test_a_signature_without_thought_text_still_gets_a_reasoning_item() -> None:
    resp = render(completion({"content": "Hi", "reasoning_signature": "S2"}))
    assert [i["type"] for i in resp["output"]] == ["reasoning", "message"]
    assert resp["output"][0]["summary"] == [] and unseal(resp["output"][0]["encrypted_content"]) == {
        "signature": "S2"
    }


def test_openrouter_reasoning_field_is_the_summary_too() -> None:
    assert (
        render(completion({"content": "Hi", "reasoning": "hmm"}))["output"][0]["summary"][0]["text"] == "hmm"
    )


@pytest.mark.parametrize(
    ("finish", "status", "reason"),
    [
        ("stop", "completed", None),
        ("length", "incomplete", "max_output_tokens"),
        ("content_filter", "incomplete", "content_filter"),
        (None, "completed", None),
    ],
)
def test_finish_reasons_set_the_status(finish: str | None, status: str, reason: str | None) -> None:
    answer = completion({"content": "x"})
    answer["choices"][0]["finish_reason"] = finish
    resp = render(answer)
    assert resp["status"] == status
    assert resp["incomplete_details"] == ({"reason": reason} if reason else None)


def test_an_error_answer_is_a_failed_response() -> None:
    answer = {"error": {"message": "Rate limit reached. Please try again in 2s.", "type": "rate_limit_error"}}
    resp = render(answer)
    assert resp["status"] == "failed" and resp["output"] == []
    assert resp["error"] == {
        "code": "rate_limit_exceeded",
        "message": "Rate limit reached. Please try again in 2s.",
    }


def test_echo_fields_default_as_the_api_does() -> None:
    resp = render(completion({"content": "x"}), {"tools": []})
    expected = {
        "object": "response",
        "model": "gpt-test",
        "created_at": 1700000000,
        "id": "resp_9",
        "background": False,
        "instructions": None,
        "max_output_tokens": None,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "top_p": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "truncation": "disabled",
        "user": None,
        "metadata": {},
    }
    assert {k: resp[k] for k in expected} == expected


def test_echo_fields_repeat_the_request() -> None:
    body = {
        **CODEX_BODY,
        "stream": False,
        "temperature": 0.3,
        "max_output_tokens": 50,
        "metadata": {"k": "v"},
        "previous_response_id": "resp_0",
        "truncation": "auto",
        "user": "me",
        "text": {"format": {"type": "json_object"}},
    }
    req = to_chat(body, None, unseal, ids=counter_ids())
    resp = check_response(
        to_response(completion({"content": "{}"}), req, "resp_1", 1, None, ids=counter_ids())
    )
    assert resp["model"] == "gpt-5.1-codex" and resp["instructions"] == "You are Codex."
    assert resp["tools"] == CODEX_BODY["tools"] and resp["store"] is False
    assert resp["reasoning"] == {"effort": None, "summary": "auto"} and resp["text"] == body["text"]
    for key in ("temperature", "max_output_tokens", "metadata", "previous_response_id", "truncation", "user"):
        assert resp[key] == body[key]
    assert resp["prompt_cache_key"] == "0199-session"


def test_stream_of_a_whole_answer_ends_with_the_same_response() -> None:
    req = request({"input": "x", "tools": TOOLS, "stream": True})
    events = parse_events([stream_of(FULL, req, "resp_9", 1700000000, None, ids=counter_ids())])
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    assert events[-1]["response"] == to_response(FULL, req, "resp_9", 1700000000, None, ids=counter_ids())


def test_custom_tools_can_be_named_by_the_caller() -> None:
    req = request({"input": "x", "tools": TOOLS})
    resp = to_response(FULL, req, "r", 1, None, custom_tools=set(), ids=counter_ids())
    assert [i["type"] for i in resp["output"]][2:] == ["function_call", "function_call"]


def test_output_as_chat_round_trips_a_response() -> None:
    req = request({"input": "x", "tools": TOOLS})
    resp = render(FULL)
    assert output_as_chat(resp["output"], req, unseal) == [
        {k: v for k, v in FULL["choices"][0]["message"].items() if k != "role"} | {"role": "assistant"}
    ]
    assert "reasoning_signature" not in output_as_chat(resp["output"], req)[0]  # sealed, and no key given

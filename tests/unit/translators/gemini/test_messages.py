"""translators/gemini/messages.py (and media.py for tool results): OpenAI messages -> turns."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.fake_gemini import validate_request
from tests.unit.translators.gemini.support import tool_call, translate
from translators.gemini import TranslationError


def test_system_and_developer_messages_become_one_system_instruction() -> None:
    out = translate(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
        ]
    )
    assert out["systemInstruction"] == {"parts": [{"text": "Be brief.\n\nUse French."}]}
    assert out["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]


def test_roles_map_and_consecutive_turns_merge() -> None:
    out = translate(
        [
            {"role": "user", "content": "a"},
            {"role": "user", "content": [{"type": "text", "text": "b"}, {"type": "text", "text": "c"}]},
            {"role": "assistant", "content": "d"},
            {"role": "assistant", "content": [{"type": "text", "text": "e"}]},
            {"role": "user", "content": "f"},
        ]
    )
    assert out["contents"] == [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}, {"text": "c"}]},
        {"role": "model", "parts": [{"text": "d"}, {"text": "e"}]},
        {"role": "user", "parts": [{"text": "f"}]},
    ]


def test_empty_turns_are_dropped_without_breaking_alternation() -> None:
    out = translate(
        [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": [{"type": "text", "text": ""}]},
            {"role": "user", "content": "b"},
        ]
    )
    assert out["contents"] == [{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]}]


def test_system_only_conversation_gets_a_minimal_user_turn() -> None:
    out = translate([{"role": "system", "content": "You are a poet."}])
    assert out["contents"] == [{"role": "user", "parts": [{"text": "."}]}]
    validate_request(out)


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([], "messages"),
        ([{"role": "wizard", "content": "x"}], "messages[0].role"),
        ([{"role": "user", "content": 42}], "messages[0].content"),
        (
            [{"role": "user", "content": [{"type": "video_url", "video_url": "x"}]}],
            "messages[0].content[0].type",
        ),
        (
            [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            "messages[0].content[0]",
        ),
    ],
)
def test_bad_messages_raise_translation_error_with_param(messages: list[Any], param: str) -> None:
    with pytest.raises(TranslationError) as exc:
        translate(messages)
    assert exc.value.param == param
    assert isinstance(exc.value, ValueError)


def test_assistant_tool_calls_and_tool_results_round_trip() -> None:
    out = translate(
        [
            {"role": "user", "content": "weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    tool_call("call_a", "get_weather", '{"city": "Paris"}'),
                    tool_call("call_b", "get_weather", '{"city": "Rome"}'),
                    tool_call("call_c", "now", ""),
                ],
            },
            {"role": "tool", "tool_call_id": "call_b", "content": '{"temp": 21}'},
            {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_c", "content": [{"type": "text", "text": "[1, 2]"}]},
            {"role": "user", "content": "thanks"},
        ]
    )
    user, model, results = out["contents"]
    assert user["role"] == "user"
    assert model == {
        "role": "model",
        "parts": [
            {"text": "Checking."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
            {"functionCall": {"name": "now", "args": {}}},
        ],
    }
    # All results of one step travel in one user turn, the follow-up text merged after them.
    assert results == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
            {"functionResponse": {"name": "get_weather", "response": {"content": "sunny"}}},
            {"functionResponse": {"name": "now", "response": {"content": "[1, 2]"}}},
            {"text": "thanks"},
        ],
    }
    validate_request(out)


def test_tool_result_without_matching_call_is_an_error() -> None:
    with pytest.raises(TranslationError) as exc:
        translate(
            [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "call_zz", "content": "1"}]
        )
    assert exc.value.param == "messages[1].tool_call_id"
    assert "call_zz" in exc.value.message


def test_tool_result_may_name_its_function_and_legacy_function_role_works() -> None:
    out = translate(
        [
            {"role": "user", "content": "x"},
            {"role": "tool", "tool_call_id": "unknown", "name": "lookup", "content": "1"},
            {"role": "function", "name": "legacy", "content": '{"a": 1}'},
        ]
    )
    assert out["contents"][0]["parts"][1:] == [
        {"functionResponse": {"name": "lookup", "response": {"content": "1"}}},
        {"functionResponse": {"name": "legacy", "response": {"a": 1}}},
    ]


@pytest.mark.parametrize(
    ("arguments", "fragment"), [("{not json", "not valid JSON"), ("[1, 2]", "JSON object")]
)
def test_bad_tool_call_arguments_raise(arguments: str, fragment: str) -> None:
    with pytest.raises(TranslationError) as exc:
        translate([{"role": "assistant", "tool_calls": [tool_call("c1", "f", arguments)]}])
    assert fragment in exc.value.message
    assert exc.value.param == "messages[0].tool_calls[0].function.arguments"


def test_tool_result_images_travel_beside_the_function_response() -> None:
    out = translate(
        [
            {"role": "assistant", "tool_calls": [tool_call("c1", "shot", "{}")]},
            {
                "role": "tool",
                "tool_call_id": "c1",
                "content": [
                    {"type": "text", "text": "here"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
                ],
            },
        ]
    )
    assert out["contents"][1]["parts"] == [
        {"functionResponse": {"name": "shot", "response": {"content": "here"}}},
        {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/"}},
    ]

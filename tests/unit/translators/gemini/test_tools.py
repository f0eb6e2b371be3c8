"""translators/gemini/tools.py: function declarations and tool_choice."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.fake_gemini import validate_request
from tests.unit.translators.gemini.support import translate
from translators.gemini import TranslationError


def test_function_declarations_and_empty_parameters() -> None:
    out = translate(
        [{"role": "user", "content": "x"}],
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather now",
                    "strict": True,
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string", "description": "City"}},
                        "required": ["city"],
                        "additionalProperties": False,
                    },
                },
            },
            {
                "type": "function",
                "function": {"name": "now", "parameters": {"type": "object", "properties": {}}},
            },
            {"type": "function", "function": {"name": "ping"}},
        ],
    )
    assert out["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather now",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string", "description": "City"}},
                        "required": ["city"],
                    },
                },
                {"name": "now"},  # an OBJECT with no properties is a 400 at Google
                {"name": "ping"},
            ]
        }
    ]
    validate_request(out)


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("none", {"mode": "NONE"}),
        ("auto", {"mode": "AUTO"}),
        ("required", {"mode": "ANY"}),
        ({"type": "function", "function": {"name": "f"}}, {"mode": "ANY", "allowedFunctionNames": ["f"]}),
        (
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "required",
                    "tools": [{"type": "function", "function": {"name": "g"}}],
                },
            },
            {"mode": "ANY", "allowedFunctionNames": ["g"]},
        ),
    ],
)
def test_tool_choice_maps_to_function_calling_config(choice: Any, config: dict[str, Any]) -> None:
    tools = [{"type": "function", "function": {"name": n}} for n in ("f", "g")]
    out = translate([{"role": "user", "content": "x"}], tools=tools, tool_choice=choice)
    assert out["toolConfig"] == {"functionCallingConfig": config}


def test_tool_choice_errors_and_no_tools() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    with pytest.raises(TranslationError) as exc:
        translate([{"role": "user", "content": "x"}], tools=tools, tool_choice="sometimes")
    assert exc.value.param == "tool_choice"
    with pytest.raises(TranslationError) as exc:
        translate([{"role": "user", "content": "x"}], tools=[{"type": "custom", "custom": {"name": "x"}}])
    assert exc.value.param == "tools[0].type"
    out = translate([{"role": "user", "content": "x"}], tool_choice="auto")
    assert "toolConfig" not in out and "tools" not in out

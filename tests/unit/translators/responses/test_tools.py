"""Responses tools and tool_choice -> chat function tools, and the names calls render back with."""

from __future__ import annotations

import pytest

from translators.openai.types import RequestError
from translators.responses.tools import ToolRef, map_tool_choice, map_tools

FN = {"type": "function", "name": "exec_command", "description": "Run", "parameters": {"type": "object"}}
NS = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Agents",
    "tools": [
        {"type": "function", "name": "spawn_agent", "strict": False, "parameters": {"type": "object"}},
        {"type": "function", "name": "exec_command"},  # clashes with the top-level tool
    ],
}
CUSTOM = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Edit files",
    "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch"},
}


def test_function_tools_map_one_to_one() -> None:
    chat, names, dropped = map_tools([{**FN, "strict": True}])
    assert chat == [
        {
            "type": "function",
            "function": {
                "name": "exec_command",
                "description": "Run",
                "parameters": {"type": "object"},
                "strict": True,
            },
        }
    ]
    assert names.ref("exec_command") == ToolRef("exec_command") and dropped == []


def test_namespaces_flatten_to_plain_names_and_clashes_take_the_flat_form() -> None:
    chat, names, _ = map_tools([FN, NS])
    assert [t["function"]["name"] for t in chat] == [
        "exec_command",
        "spawn_agent",
        "multi_agent_v1__exec_command",
    ]
    assert names.ref("spawn_agent") == ToolRef("spawn_agent", "multi_agent_v1")
    assert names.ref("multi_agent_v1__exec_command") == ToolRef("exec_command", "multi_agent_v1")
    assert names.upstream("exec_command", "multi_agent_v1") == "multi_agent_v1__exec_command"
    assert names.upstream("exec_command") == "exec_command"
    assert chat[1]["function"]["strict"] is False


def test_custom_tools_take_one_string_and_keep_their_grammar_in_the_description() -> None:
    chat, names, _ = map_tools([CUSTOM])
    fn = chat[0]["function"]
    assert fn["parameters"] == {
        "type": "object",
        "properties": {"input": {"type": "string", "description": "The tool's whole input."}},
        "required": ["input"],
        "additionalProperties": False,
    }
    assert (
        fn["description"].startswith("Edit files\n\n")
        and "lark grammar:\nstart: begin_patch" in fn["description"]
    )
    assert names.custom == frozenset({"apply_patch"}) and names.ref("apply_patch").custom


@pytest.mark.parametrize(
    "tool",
    [
        {"type": "web_search", "external_web_access": False},
        {"type": "web_search_preview"},
        {"type": "file_search", "vector_store_ids": ["vs_1"]},
        {"type": "code_interpreter", "container": {"type": "auto"}},
        {"type": "image_generation"},
        {"type": "computer_use_preview", "display_width": 1, "display_height": 1, "environment": "linux"},
        {"type": "mcp", "server_label": "x", "name": "mcp_x"},
        {"type": "local_shell"},
        {"type": "tool_search"},
    ],
)
def test_built_in_tools_are_dropped_by_name(tool: dict) -> None:
    chat, _, dropped = map_tools([FN, tool])
    assert [t["function"]["name"] for t in chat] == ["exec_command"]
    assert dropped == [tool.get("name") or tool["type"]]


@pytest.mark.parametrize(
    ("tools", "param"),
    [
        ("x", "tools"),
        ([{"name": "untyped"}], "tools[0]"),
        ([{"type": "function"}], "tools[0].name"),
        ([FN, FN], "tools[1]"),
        ([{"type": "namespace", "name": "n", "tools": [{"type": "web_search"}]}], "tools[0].tools[0]"),
        ([{"type": "namespace", "name": "n"}], "tools[0].tools"),
    ],
)
def test_unusable_tools_are_a_400_naming_the_field(tools: object, param: str) -> None:
    with pytest.raises(RequestError) as err:
        map_tools(tools)
    assert err.value.param == param


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, None),
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        (
            {"type": "function", "name": "exec_command"},
            {"type": "function", "function": {"name": "exec_command"}},
        ),
        (
            {"type": "function", "name": "exec_command", "namespace": "multi_agent_v1"},
            {"type": "function", "function": {"name": "multi_agent_v1__exec_command"}},
        ),
        (
            {"type": "custom", "name": "apply_patch"},
            {"type": "function", "function": {"name": "apply_patch"}},
        ),
        ({"type": "web_search_preview"}, "auto"),
        (
            {
                "type": "allowed_tools",
                "mode": "required",
                "tools": [{"type": "function", "name": "spawn_agent"}, {"type": "web_search"}],
            },
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "required",
                    "tools": [{"type": "function", "function": {"name": "spawn_agent"}}],
                },
            },
        ),
        ({"type": "allowed_tools", "mode": "auto", "tools": [{"type": "web_search"}]}, "none"),
    ],
)
def test_tool_choice_maps_to_the_chat_form(choice: object, expected: object) -> None:
    chat, names, _ = map_tools([FN, NS, CUSTOM])
    assert map_tool_choice(choice, names, chat) == expected


@pytest.mark.parametrize(
    "choice",
    [
        "sometimes",
        {"type": "function"},
        {"type": "function", "name": "missing"},
        {"type": "allowed_tools"},
        3,
    ],
)
def test_unusable_tool_choice_is_a_400(choice: object) -> None:
    chat, names, _ = map_tools([FN])
    with pytest.raises(RequestError) as err:
        map_tool_choice(choice, names, chat)
    assert err.value.param.startswith("tool_choice")

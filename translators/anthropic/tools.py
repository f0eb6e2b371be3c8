"""Anthropic `tools` and `tool_choice` -> chat function tools, tool_choice and parallel_tool_calls.

A tool with an `input_schema` is a function tool whatever else it carries (`cache_control`,
`defer_loading`, `type: "custom"`, input examples are tolerated and not forwarded; the model simply sees
every tool from the start). A tool without one is an Anthropic server tool (web_search_*, bash_*,
text_editor_*, ...) that no backend here can run: it is skipped and named in `ignored` as `tool:<type>`.
"""

from __future__ import annotations

from typing import Any

from translators.anthropic.checks import fail, text_field

_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


def to_chat_tools(tools: Any, ignored: list[str]) -> list[dict[str, Any]]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise fail("tools", "Input should be a valid list")
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        where = f"tools.{i}"
        if not isinstance(tool, dict):
            raise fail(where, "Input should be a valid tool object")
        schema = tool.get("input_schema")
        kind = tool.get("type")
        if schema is None and isinstance(kind, str) and kind != "custom":
            ignored.append(f"tool:{kind}")
            continue
        if not isinstance(schema, dict):
            raise fail(f"{where}.input_schema", "Field required" if schema is None else "must be an object")
        function: dict[str, Any] = {"name": text_field(tool, "name", where), "parameters": schema}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        if isinstance(tool.get("strict"), bool):
            function["strict"] = tool["strict"]
        out.append({"type": "function", "function": function})
    return out


def to_chat_tool_choice(choice: Any, have_tools: bool, ignored: list[str]) -> dict[str, Any]:
    """The chat fields for `tool_choice` (tool_choice, parallel_tool_calls); none without tools."""
    if choice is None:
        return {}
    if not isinstance(choice, dict):
        raise fail("tool_choice", "Input should be a valid tool choice object")
    kind = text_field(choice, "type", "tool_choice")
    if kind == "tool":
        mapped: Any = {"type": "function", "function": {"name": text_field(choice, "name", "tool_choice")}}
    elif kind in _CHOICES:
        mapped = _CHOICES[kind]
    else:
        raise fail("tool_choice.type", f"unsupported tool choice {kind!r}")
    if not have_tools:  # chat refuses a tool_choice without tools; Anthropic clients send one anyway
        ignored.append("tool_choice")
        return {}
    out: dict[str, Any] = {"tool_choice": mapped}
    if choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False
    return out

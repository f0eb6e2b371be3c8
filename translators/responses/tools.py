"""Responses `tools` and `tool_choice` -> chat function tools, and the names to render calls back.

- `function` tools map one to one.
- `namespace` tools (Codex's `multi_agent_v1`) are flattened into their function/custom tools. The model
  sees each under its plain name; on a clash with another tool it sees `<namespace>__<name>`, Codex's own
  flat form. Calls render back as `name` + `namespace`: Codex dispatches on that pair
  (`ToolName::new(namespace, name)`), so a flat name without the namespace would be an unknown tool.
- `custom` (freeform) tools become a function with one required string argument `input`; their calls
  render back as `custom_tool_call` with that string.
- Built-in tools (web_search, file_search, code_interpreter, mcp, ...) are hosted by OpenAI and cannot
  run here: they are left out and named in `dropped`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from translators.openai.types import RequestError

CUSTOM_ARGUMENT = "input"


@dataclass(frozen=True, slots=True)
class ToolRef:
    """A tool as the client knows it."""

    name: str
    namespace: str | None = None
    custom: bool = False


@dataclass(frozen=True, slots=True)
class ToolNames:
    """The upstream (model-visible) name of each client tool, both ways."""

    by_upstream: dict[str, ToolRef] = field(default_factory=dict)

    def ref(self, upstream: str) -> ToolRef:
        return self.by_upstream.get(upstream) or ToolRef(upstream)

    def upstream(self, name: str, namespace: str | None = None) -> str:
        for up, ref in self.by_upstream.items():
            if ref.name == name and ref.namespace == namespace:
                return up
        return flat_name(namespace, name) if namespace else name

    @property
    def custom(self) -> frozenset[str]:
        return frozenset(up for up, ref in self.by_upstream.items() if ref.custom)


def flat_name(namespace: str, name: str) -> str:
    return f"{namespace.rstrip('_')}__{name.lstrip('_')}"


def map_tools(tools: Any) -> tuple[list[dict[str, Any]], ToolNames, list[str]]:
    """(chat tools, names, dropped built-in tools)."""
    if tools is None:
        return [], ToolNames(), []
    if not isinstance(tools, list):
        raise RequestError("'tools' must be an array.", param="tools")
    entries: list[tuple[ToolRef, dict[str, Any], str]] = []
    dropped: list[str] = []
    for k, tool in enumerate(tools):
        where = f"tools[{k}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind in ("function", "custom"):
            entries.append((_ref(tool, None, where), tool, where))
        elif kind == "namespace":
            entries.extend(_namespace(tool, where))
        elif isinstance(kind, str):
            dropped.append(str(tool.get("name") or kind))
        else:
            raise RequestError(f"{where} must be an object with a 'type'.", param=where)
    names = _assign_names(entries)
    chat = [_chat_tool(up, spec, ref.custom) for up, (ref, spec, _) in zip(names, entries, strict=True)]
    return chat, ToolNames(dict(zip(names, (e[0] for e in entries), strict=True))), dropped


def _ref(tool: dict[str, Any], namespace: str | None, where: str) -> ToolRef:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise RequestError(f"Missing required parameter: '{where}.name'.", param=f"{where}.name")
    return ToolRef(name, namespace, tool.get("type") == "custom")


def _namespace(tool: dict[str, Any], where: str) -> list[tuple[ToolRef, dict[str, Any], str]]:
    ns = _ref(tool, None, where).name
    inner = tool.get("tools")
    if not isinstance(inner, list):
        raise RequestError(f"'{where}.tools' must be an array.", param=f"{where}.tools")
    out = []
    for k, sub in enumerate(inner):
        sub_where = f"{where}.tools[{k}]"
        if not isinstance(sub, dict) or sub.get("type") not in ("function", "custom"):
            raise RequestError(
                f"{sub_where}: a namespace holds function and custom tools only.", param=sub_where
            )
        out.append((_ref(sub, ns, sub_where), sub, sub_where))
    return out


def _assign_names(entries: list[tuple[ToolRef, dict[str, Any], str]]) -> list[str]:
    """Top-level tools keep their names; a namespaced tool gets its plain name unless that is taken."""
    taken: set[str] = set()
    for ref, _, where in entries:
        if ref.namespace is None:
            if ref.name in taken:
                raise RequestError(f"{where}: a tool named {ref.name!r} is already defined.", param=where)
            taken.add(ref.name)
    names = []
    for ref, _, where in entries:
        name = ref.name
        if ref.namespace is not None:
            name = ref.name if ref.name not in taken else flat_name(ref.namespace, ref.name)
            if name in taken:
                raise RequestError(f"{where}: a tool named {name!r} is already defined.", param=where)
            taken.add(name)
        names.append(name)
    return names


def _chat_tool(name: str, spec: dict[str, Any], custom: bool) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": name}
    description = spec.get("description")
    if custom:
        description = _custom_description(description, spec.get("format"))
        fn["parameters"] = {
            "type": "object",
            "properties": {CUSTOM_ARGUMENT: {"type": "string", "description": "The tool's whole input."}},
            "required": [CUSTOM_ARGUMENT],
            "additionalProperties": False,
        }
    elif spec.get("parameters") is not None:
        fn["parameters"] = spec["parameters"]
    if isinstance(description, str) and description:
        fn["description"] = description
    if not custom and isinstance(spec.get("strict"), bool):
        fn["strict"] = spec["strict"]
    return {"type": "function", "function": fn}


def _custom_description(description: Any, fmt: Any) -> str:
    """A freeform tool's grammar is what tells the model how to write its input: keep it in the text."""
    text = description if isinstance(description, str) else ""
    if isinstance(fmt, dict) and fmt.get("type") == "grammar" and isinstance(fmt.get("definition"), str):
        syntax = fmt.get("syntax") or "grammar"
        text += f"\n\nThe `{CUSTOM_ARGUMENT}` string must follow this {syntax} grammar:\n{fmt['definition']}"
    return text.strip()


def map_tool_choice(
    choice: Any, names: ToolNames, chat_tools: list[dict[str, Any]]
) -> dict[str, Any] | str | None:
    """The chat `tool_choice` for a Responses one (None: leave it out)."""
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    if not isinstance(choice, dict) or not isinstance(choice.get("type"), str):
        raise RequestError("'tool_choice' must be auto, none, required or an object.", param="tool_choice")
    kind = choice["type"]
    if kind in ("function", "custom"):
        return {"type": "function", "function": {"name": _chosen(choice, names, chat_tools, "tool_choice")}}
    if kind == "allowed_tools":
        return _allowed(choice, names, chat_tools)
    return "auto"  # a built-in tool: it was left out, so let the model choose among the others


def _chosen(choice: dict[str, Any], names: ToolNames, chat_tools: list[dict[str, Any]], where: str) -> str:
    name = choice.get("name")
    if not isinstance(name, str):
        raise RequestError(f"Missing required parameter: '{where}.name'.", param=f"{where}.name")
    up = names.upstream(name, choice.get("namespace"))
    if up not in {t["function"]["name"] for t in chat_tools}:
        raise RequestError(f"{where} names {name!r}, which is not one of the tools.", param=where)
    return up


def _allowed(
    choice: dict[str, Any], names: ToolNames, chat_tools: list[dict[str, Any]]
) -> dict[str, Any] | str:
    listed = choice.get("tools")
    if not isinstance(listed, list):
        raise RequestError("'tool_choice.tools' must be an array.", param="tool_choice.tools")
    allowed = [
        {"type": "function", "function": {"name": _chosen(t, names, chat_tools, f"tool_choice.tools[{k}]")}}
        for k, t in enumerate(listed)
        if isinstance(t, dict) and t.get("type") in ("function", "custom")
    ]
    if not allowed:
        return "none"  # only built-in tools are allowed, and none of them can run here
    mode = "required" if choice.get("mode") == "required" else "auto"
    return {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": allowed}}

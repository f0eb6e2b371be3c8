"""Responses items -> internal chat messages, for request input and for a response's own output.

The assistant side of a turn arrives as a run of items: reasoning, message, function_call and
custom_tool_call, in any order. Each run becomes ONE assistant message: its text, all its tool calls,
the reasoning summaries as `reasoning_content` and the first unsealed signature as
`reasoning_signature`, which is what the upstream needs back from that turn. A run ends at any other
item. Media a tool returned follow as one user message once the run of tool results ends, since a chat
conversation allows nothing between an assistant's tool calls and their results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from translators import json_codec
from translators.openai.types import RequestError
from translators.responses.content import assistant_text, system_content, tool_output, user_content
from translators.responses.tools import CUSTOM_ARGUMENT, ToolNames

Unseal = Callable[[str], dict[str, Any] | None]
_ASSISTANT_ITEMS = frozenset({"reasoning", "function_call", "custom_tool_call"})
_TOOL_OUTPUTS = frozenset({"function_call_output", "custom_tool_call_output"})


@dataclass(slots=True)
class _Turn:
    texts: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    signature: str | None = None

    def message(self) -> dict[str, Any] | None:
        if not self.texts and not self.calls:
            return None  # reasoning alone: nothing of the turn to attach it to
        msg: dict[str, Any] = {"role": "assistant", "content": "\n\n".join(self.texts) or None}
        if self.calls:
            msg["tool_calls"] = self.calls
        if self.thoughts:
            msg["reasoning_content"] = "\n\n".join(self.thoughts)
        if self.signature:
            msg["reasoning_signature"] = self.signature
        return msg


def item_type(item: dict[str, Any]) -> str | None:
    """An item's type; a bare {role, content} is a message (the API's "easy" input message)."""
    kind = item.get("type")
    return "message" if kind is None and "role" in item else kind


def is_assistant(item: dict[str, Any]) -> bool:
    kind = item_type(item)
    return kind in _ASSISTANT_ITEMS or (kind == "message" and item.get("role") == "assistant")


class _Builder:
    def __init__(self, names: ToolNames, unseal: Unseal) -> None:
        self.names = names
        self.unseal = unseal
        self.messages: list[dict[str, Any]] = []
        self.skipped: list[str] = []
        self._turn = _Turn()
        self._media: list[dict[str, Any]] = []

    def add(self, item: Any, where: str) -> None:
        if not isinstance(item, dict):
            raise RequestError(f"'{where}' must be an object.", param=where)
        kind = item_type(item)
        if is_assistant(item):
            self._assistant(item, kind, where)
            return
        self._end_turn()
        if kind in _TOOL_OUTPUTS:
            self._tool_result(item, where)
            return
        self._flush_media()
        if kind == "message":
            self.messages.append(_message(item, where))
        elif kind == "item_reference":
            raise RequestError(
                f"{where}: item_reference is not supported by this proxy; send the item itself, "
                "or continue with previous_response_id.",
                param=where,
            )
        else:  # e.g. web_search_call or compaction: a hosted tool's trace no upstream here can read
            self.skipped.append(f"{where} ({kind})")

    def finish(self) -> list[dict[str, Any]]:
        self._end_turn()
        self._flush_media()
        return self.messages

    def _assistant(self, item: dict[str, Any], kind: str | None, where: str) -> None:
        turn = self._turn
        if kind == "message":
            turn.texts.append(assistant_text(item.get("content"), f"{where}.content"))
        elif kind == "reasoning":
            self._reasoning(item, where)
        else:
            turn.calls.append(self._call(item, kind == "custom_tool_call", where))

    def _reasoning(self, item: dict[str, Any], where: str) -> None:
        parts = item.get("summary") or item.get("content") or []
        text = "\n\n".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
        if text:
            self._turn.thoughts.append(text)
        token = item.get("encrypted_content")
        if not isinstance(token, str) or not token:
            return
        try:  # every token is checked, though the first signature of the turn is the one kept
            payload = self.unseal(token)
        except RequestError as e:
            label = f"{where} (reasoning item {item.get('id') or 'without id'})"
            raise RequestError(f"{label}: {e}", param=f"{where}.encrypted_content") from None
        signature = payload.get("signature") if payload else None
        if isinstance(signature, str) and self._turn.signature is None:
            self._turn.signature = signature

    def _call(self, item: dict[str, Any], custom: bool, where: str) -> dict[str, Any]:
        call_id, name = item.get("call_id"), item.get("name")
        if not isinstance(call_id, str) or not isinstance(name, str):
            raise RequestError(f"{where}: call_id and name are required strings.", param=where)
        namespace = item.get("namespace") if isinstance(item.get("namespace"), str) else None
        if custom:
            arguments = json_codec.dumps({CUSTOM_ARGUMENT: str(item.get("input") or "")}).decode()
        else:
            arguments = item.get("arguments") if isinstance(item.get("arguments"), str) else "{}"
        fn = {"name": self.names.upstream(name, namespace), "arguments": arguments}
        return {"id": call_id, "type": "function", "function": fn}

    def _tool_result(self, item: dict[str, Any], where: str) -> None:
        call_id = item.get("call_id")
        if not isinstance(call_id, str):
            raise RequestError(f"Missing required parameter: '{where}.call_id'.", param=f"{where}.call_id")
        text, media = tool_output(item.get("output"), f"{where}.output")
        self.messages.append({"role": "tool", "tool_call_id": call_id, "content": text})
        self._media.extend(media)

    def _end_turn(self) -> None:
        msg = self._turn.message()
        if msg is not None:
            self.messages.append(msg)
        self._turn = _Turn()

    def _flush_media(self) -> None:
        if self._media:
            self.messages.append({"role": "user", "content": self._media})
            self._media = []


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role, content = item.get("role"), item.get("content")
    if role == "user":
        return {"role": "user", "content": user_content(content, f"{where}.content")}
    if role in ("system", "developer"):
        return {"role": "system", "content": system_content(content, f"{where}.content")}
    raise RequestError(
        f"{where}: role {role!r} is not one of user, assistant, system, developer.", param=f"{where}.role"
    )


def items_as_chat(
    items: list[Any], names: ToolNames, unseal: Unseal, where: str = "input"
) -> tuple[list[dict[str, Any]], list[str]]:
    """(chat messages, the items skipped because no upstream here can read them)."""
    builder = _Builder(names, unseal)
    for k, item in enumerate(items):
        builder.add(item, f"{where}[{k}]")
    return builder.finish(), builder.skipped

"""An agent stuck calling the same tool with the same arguments and getting the same result.

Read from the request's own history alone (no state, so it holds across instances and restarts): a
round is an assistant message with tool calls and what follows it up to the next assistant message
(the tool results, and any user text sent with them). Identical rounds at the end of the conversation
(same calls, same arguments, same results, same user text) are counted; call ids do not matter, and
arguments are compared as JSON values (key order and spacing do not matter). Anything else in between,
a user's new message included, starts the count again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from translators import json_codec

SHOWN_ARGUMENTS = 120  # characters of the arguments quoted in the note and the error


@dataclass(frozen=True, slots=True)
class ToolLoop:
    name: str  # the (first) repeated call
    arguments: str  # as the model sent them
    times: int  # identical rounds at the end of the conversation (counted up to the limit + 1)

    def call(self) -> str:
        args = self.arguments
        return f"{self.name}({args if len(args) <= SHOWN_ARGUMENTS else args[:SHOWN_ARGUMENTS] + '…'})"


def find_tool_loop(messages: Any, limit: int) -> ToolLoop | None:
    """The identical rounds the conversation ends with, when there are at least `limit`."""
    if not isinstance(messages, list):
        return None
    end, last, times = len(messages), None, 0
    while times <= limit:
        start = _round_start(messages, end)
        if start is None:
            break
        signature = _signature(messages[start], messages[start + 1 : end])
        if signature is None or (last is not None and signature != last):
            break
        last, times, end = signature, times + 1, start
    if times < limit:
        return None
    first = messages[end]["tool_calls"][0].get("function") or {}
    return ToolLoop(str(first.get("name")), str(first.get("arguments") or ""), times)


def steered(request: dict[str, Any], note: str) -> dict[str, Any]:
    """A copy of `request` whose latest tool result ends with `note` (the client's request is untouched)."""
    messages = list(request["messages"])
    for i in range(len(messages) - 1, -1, -1):
        msg = messages[i]
        if isinstance(msg, dict) and msg.get("role") == "tool":
            content = msg.get("content")
            if isinstance(content, list):
                content = [*content, {"type": "text", "text": note}]
            else:
                content = f"{content or ''}\n\n{note}"
            messages[i] = {**msg, "content": content}
            break
    return {**request, "messages": messages}


def _round_start(messages: list[Any], end: int) -> int | None:
    """The assistant message that opens the round ending before `end`."""
    for i in range(end - 1, -1, -1):
        msg = messages[i]
        if isinstance(msg, dict) and msg.get("role") == "assistant":
            return i if i < end - 1 else None
    return None


def _signature(assistant: dict[str, Any], rest: list[Any]) -> tuple[Any, ...] | None:
    calls = assistant.get("tool_calls")
    if not isinstance(calls, list) or not calls:
        return None
    results: dict[Any, Any] = {}
    said: list[str] = []
    for msg in rest:
        if not isinstance(msg, dict):
            return None
        if msg.get("role") == "tool":
            results[msg.get("tool_call_id")] = _same(msg.get("content"))
        else:
            said.append(_same(msg.get("content")))
    made = []
    for call in calls:
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            return None
        made.append((fn.get("name"), _arguments(fn.get("arguments")), results.get(call.get("id"))))
    return tuple(made), tuple(said)


def _arguments(arguments: Any) -> str:
    """Arguments as a JSON value with sorted keys; text that is no JSON as it is."""
    if isinstance(arguments, str):
        try:
            arguments = json_codec.loads(arguments)
        except (json_codec.JSONDecodeError, RecursionError):
            return arguments
    return _same(arguments)


def _same(value: Any) -> str:
    """A canonical text of a value, for comparing (a few rounds per request: the standard library will do)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)

"""What the loop-guard and repair tests send, in each client dialect: a read_file tool, agent histories
that repeat the same call with the same result, and the malformed arguments weak models write."""

from __future__ import annotations

import json
from typing import Any

SCHEMA = {
    "type": "object",
    "properties": {"path": {"type": "string"}, "lines": {"type": "integer"}},
    "required": ["path"],
    "additionalProperties": False,
}
CHAT_TOOLS = [{"type": "function", "function": {"name": "read_file", "parameters": SCHEMA}}]
MESSAGES_TOOLS = [{"name": "read_file", "description": "Read a file", "input_schema": SCHEMA}]
RESPONSES_TOOLS = [{"type": "function", "name": "read_file", "parameters": SCHEMA, "strict": False}]

ARGS = {"path": "src/app.py"}
RESULT = "FileNotFoundError: src/app.py"
ASK = "Fix the bug in src/app.py"

# (as the model sent them, as the client should get them): repaired where a rule fits and the schema
# agrees, else exactly as sent.
REPAIRED = {
    "trailing comma": ('{"path": "src/app.py", "lines": 20,}', {"path": "src/app.py", "lines": 20}),
    "single quotes": ("{'path': 'src/app.py'}", {"path": "src/app.py"}),
    "code fence": ('```json\n{"path": "src/app.py"}\n```', {"path": "src/app.py"}),
    "missing brace": ('{"lines": 20, "path": "src/app.py"', {"lines": 20, "path": "src/app.py"}),
}
UNCHANGED = {
    "unreadable": '{"path": "src/app.py" "lines": 2}',
    "against the schema": '{"lines": 20,}',  # repairable, but `path` is required
}


def chat_history(rounds: int) -> list[dict[str, Any]]:
    """An OpenAI chat agent that called read_file `rounds` times, the same way, with the same result."""
    out: list[dict[str, Any]] = [{"role": "user", "content": ASK}]
    for n in range(rounds):
        call = {
            "id": f"call_{n}",
            "type": "function",
            "function": {"name": "read_file", "arguments": json.dumps(ARGS)},
        }
        out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        out.append({"role": "tool", "tool_call_id": f"call_{n}", "content": RESULT})
    return out


def messages_history(rounds: int) -> list[dict[str, Any]]:
    """The same agent on Anthropic Messages (tool_use and tool_result blocks)."""
    out: list[dict[str, Any]] = [{"role": "user", "content": ASK}]
    for n in range(rounds):
        out.append(
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": f"toolu_{n}", "name": "read_file", "input": ARGS}],
            }
        )
        out.append(
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": f"toolu_{n}", "content": RESULT}],
            }
        )
    return out


def responses_input(rounds: int) -> list[dict[str, Any]]:
    """The same agent on OpenAI Responses (function_call and function_call_output items)."""
    out: list[dict[str, Any]] = [{"role": "user", "content": ASK}]
    for n in range(rounds):
        out.append(
            {
                "type": "function_call",
                "call_id": f"call_{n}",
                "name": "read_file",
                "arguments": json.dumps(ARGS),
            }
        )
        out.append({"type": "function_call_output", "call_id": f"call_{n}", "output": RESULT})
    return out

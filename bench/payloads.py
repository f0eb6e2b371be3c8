"""Request bodies: a short chat, and a ~200 KB coding-agent turn (long history, tool calls, tools array).

Deterministic (seeded), so every target and every round gets byte-identical bodies.
"""

from __future__ import annotations

import json
import random
from functools import cache
from typing import Any

SHORT_MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a concise assistant. Answer in one short sentence."},
    {"role": "user", "content": "Say hello to the benchmark, and mention that this is a test request."},
]
AGENT_BYTES = 200_000

_SYSTEM = (
    "You are a coding agent working in the user's repository. Use the tools to read files, search the "
    "code, run commands and edit files. Before editing, read the surrounding code. Keep changes small, "
    "typed and tested; run the test suite after each change and fix what breaks. Never print secrets. "
    "When a command fails, read its output carefully before retrying. Explain what you changed and why."
)
_WORDS = (
    "def", "return", "self", "async", "await", "import", "from", "class", "yield", "with", "open", "path",
    "config", "request", "response", "stream", "chunk", "token", "model", "session", "history", "proxy",
    "upstream", "client", "header", "status", "error", "retry", "key", "timeout", "buffer", "json", "parse",
    "encode", "decode", "assert", "raise", "except", "finally", "lambda", "list", "dict", "tuple", "int",
)  # fmt: skip
_TOOLS = (
    ("read_file", "Read a file.", {"path": "string", "offset": "integer", "limit": "integer"}),
    ("write_file", "Create or overwrite a file.", {"path": "string", "content": "string"}),
    ("edit_file", "Replace an exact string in a file.", {"path": "string", "old": "string", "new": "string"}),
    ("list_dir", "List a directory.", {"path": "string", "depth": "integer"}),
    ("grep", "Search file contents with a regular expression.", {"pattern": "string", "path": "string"}),
    ("glob", "Find files by glob pattern.", {"pattern": "string"}),
    ("run", "Run a shell command and return its output.", {"command": "string", "timeout": "integer"}),
    ("run_tests", "Run the test suite, optionally filtered.", {"filter": "string", "verbose": "boolean"}),
    ("git_diff", "Show the working tree diff.", {"path": "string", "staged": "boolean"}),
    ("git_log", "Show recent commits.", {"count": "integer", "path": "string"}),
    ("web_fetch", "Fetch a documentation page.", {"url": "string"}),
    ("ask_user", "Ask the user a clarifying question.", {"question": "string"}),
    ("todo_write", "Update the task list.", {"items": "array"}),
    ("python", "Evaluate a Python snippet in a sandbox.", {"code": "string"}),
    ("lint", "Run the linter on paths.", {"paths": "array", "fix": "boolean"}),
    ("format", "Format files.", {"paths": "array"}),
    ("type_check", "Run the type checker.", {"paths": "array"}),
    ("open_issue", "Read an issue of the tracker.", {"number": "integer"}),
)  # fmt: skip


def _schema(params: dict[str, str]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for name, kind in params.items():
        prop: dict[str, Any] = {"type": kind, "description": f"The {name.replace('_', ' ')}."}
        if kind == "array":
            prop["items"] = {"type": "string"}
        props[name] = prop
    return {
        "type": "object",
        "properties": props,
        "required": list(params)[:1],
        "additionalProperties": False,
    }


def _code(rng: random.Random, lines: int) -> str:
    out = []
    for i in range(lines):
        indent = "    " * rng.randrange(0, 3)
        words = " ".join(rng.choices(_WORDS, k=rng.randrange(3, 10)))
        out.append(f"{indent}{words}  # line {i}")
    return "\n".join(out)


def _turn(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """One agent step: the model calls a tool, the tool answers, the model comments."""
    name, _, params = _TOOLS[n % len(_TOOLS)]
    args = {p: (f"src/module_{n}.py" if kind == "string" else 40) for p, kind in params.items()}
    call_id = f"call_{n:04d}_{rng.getrandbits(40):010x}"
    result = _code(rng, rng.randrange(20, 60)) if n % 3 else json.dumps({"exit": 0, "stdout": _code(rng, 15)})
    return [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": result},
        {"role": "assistant", "content": " ".join(rng.choices(_WORDS, k=rng.randrange(15, 40))) + "."},
    ]


def _size(obj: Any) -> int:
    return len(json.dumps(obj, separators=(",", ":")))


@cache
def agent_messages(size: int = AGENT_BYTES) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(messages, tools) whose JSON is about `size` bytes."""
    rng = random.Random(20240601)
    tools = [
        {"type": "function", "function": {"name": n, "description": d, "parameters": _schema(p)}}
        for n, d, p in _TOOLS
    ]
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": _SYSTEM},
        {"role": "user", "content": "The relay drops the last chunk under load; find out why, fix it."},
    ]
    total = _size(messages) + _size(tools)
    n = 0
    while total < size - 2000:
        turn = _turn(rng, n)
        messages += turn
        total += _size(turn)
        n += 1
    messages.append({"role": "user", "content": "Good. Now run the tests again and summarise the failures."})
    return messages, tools

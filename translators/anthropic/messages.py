"""Anthropic `messages` -> internal chat messages, in order.

- A user turn holding tool_result blocks becomes the tool messages first (in block order), then one user
  message with what the tools returned besides text (images, documents: chat tool messages hold text
  only), then one user message with the turn's other blocks. Chat requires tool messages to follow the
  assistant's tool calls directly.
- tool_result content is joined into the tool message's text; `is_error: true` prefixes it with
  "Error: " so the model sees the call failed.
- An assistant turn becomes one message: text blocks joined by blank lines, tool_use blocks as
  tool_calls (arguments = the input as JSON), thinking text as `reasoning_content` and the first of our
  own signatures (thinking or redacted_thinking) as `reasoning_signature`. Foreign signatures are dropped.
- Blocks of Anthropic's server-side tools (web search, code execution, ...) cannot be replayed to another
  model: they are dropped and named in `ignored` as `block:<type>`.
"""

from __future__ import annotations

from typing import Any

from translators import json_codec
from translators.anthropic.checks import block_list, fail, text_field
from translators.anthropic.parts import to_parts
from translators.anthropic.signatures import decode_signature

SERVER_BLOCKS = frozenset(
    {
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "tool_search_tool_result",
        "container_upload",
        "mcp_tool_use",
        "mcp_tool_result",
    }
)
_ASSISTANT_ONLY = frozenset({"tool_use", "thinking", "redacted_thinking"})


def to_chat_messages(messages: Any, ignored: list[str]) -> list[dict[str, Any]]:
    if not isinstance(messages, list):
        raise fail("messages", "Field required" if messages is None else "Input should be a valid list")
    if not messages:
        raise fail("messages", "at least one message is required")
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(msg, dict):
            raise fail(where, "Input should be a valid message object")
        role = msg.get("role")
        content = msg.get("content")
        if role == "user":
            out.extend(_user_turn(content, where, ignored))
        elif role == "assistant":
            out.extend(_assistant_turn(content, where, ignored))
        else:
            raise fail(f"{where}.role", "Input should be 'user' or 'assistant'")
    return out


def _user_turn(content: Any, where: str, ignored: list[str]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    at = f"{where}.content"
    tools: list[dict[str, Any]] = []
    returned: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(block_list(content, at)):
        kind = block["type"]
        if kind == "tool_result":
            message, media = _tool_result(block, f"{at}.{j}")
            tools.append(message)
            returned.extend(media)
        elif kind in SERVER_BLOCKS:
            ignored.append(f"block:{kind}")
        elif kind in _ASSISTANT_ONLY:
            raise fail(f"{at}.{j}.type", f"a {kind} block belongs in an assistant message")
        else:
            parts.extend(to_parts(block, f"{at}.{j}"))
    out = tools
    if returned:
        out.append({"role": "user", "content": returned})
    if parts:
        out.append({"role": "user", "content": parts})
    return out


def _tool_result(block: dict[str, Any], where: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the tool message, the non-text parts the tool returned)."""
    call_id = text_field(block, "tool_use_id", where)
    content = block.get("content")
    texts: list[str] = []
    media: list[dict[str, Any]] = []
    if isinstance(content, str):
        texts.append(content)
    elif content is not None:
        at = f"{where}.content"
        for k, inner in enumerate(block_list(content, at)):
            for part in to_parts(inner, f"{at}.{k}"):
                if part["type"] == "text":
                    texts.append(part["text"])
                else:
                    media.append(part)
    text = "\n".join(texts)
    if block.get("is_error") is True:
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": call_id, "content": text}, media


def _assistant_turn(content: Any, where: str, ignored: list[str]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "assistant", "content": content}]
    at = f"{where}.content"
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    signature: str | None = None
    for j, block in enumerate(block_list(content, at)):
        kind = block["type"]
        if kind == "text":
            texts.append(text_field(block, "text", f"{at}.{j}"))
        elif kind == "tool_use":
            calls.append(_tool_call(block, f"{at}.{j}"))
        elif kind == "thinking":
            thoughts.append(text_field(block, "thinking", f"{at}.{j}"))
            signature = signature or decode_signature(block.get("signature"))
        elif kind == "redacted_thinking":
            signature = signature or decode_signature(block.get("data"))
        elif kind in SERVER_BLOCKS:
            ignored.append(f"block:{kind}")
        elif kind == "compaction":
            texts.extend(p["text"] for p in to_parts(block, f"{at}.{j}"))
        else:
            raise fail(f"{at}.{j}.type", f"{kind} blocks are not allowed in assistant messages")
    return _assistant_message(texts, thoughts, calls, signature)


def _assistant_message(
    texts: list[str], thoughts: list[str], calls: list[dict[str, Any]], signature: str | None
) -> list[dict[str, Any]]:
    thought = "\n\n".join(t for t in thoughts if t)
    if not (texts or calls or thought or signature):
        return []  # nothing left once server-side blocks are dropped
    msg: dict[str, Any] = {"role": "assistant", "content": "\n\n".join(texts) if texts else None}
    if msg["content"] is None and not calls:
        msg["content"] = ""  # chat wants content or tool_calls on an assistant message
    if calls:
        msg["tool_calls"] = calls
    if thought:
        msg["reasoning_content"] = thought
    if signature:
        msg["reasoning_signature"] = signature
    return [msg]


def _tool_call(block: dict[str, Any], where: str) -> dict[str, Any]:
    args = block.get("input", {})
    if not isinstance(args, dict):
        raise fail(f"{where}.input", "Input should be a valid dictionary")
    return {
        "id": text_field(block, "id", where),
        "type": "function",
        "function": {"name": text_field(block, "name", where), "arguments": json_codec.dumps(args).decode()},
    }

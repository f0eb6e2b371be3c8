"""A local estimate of a request's input tokens, for `count_tokens` and `message_start`.

It is an estimate, not a count: no backend tokenizer is run. Text (message text, thought text, tool call
names and arguments, tool schemas as JSON) counts one token per CHARS_PER_TOKEN characters, rounded up;
each message adds MESSAGE_OVERHEAD, each image IMAGE_TOKENS (Anthropic's cap for one image) and each
document DOCUMENT_TOKENS (a few pages' worth: its pages are not counted). It grows with the prompt, which
is what clients use it for (deciding when to compact).
"""

from __future__ import annotations

import math
from typing import Any

from translators import json_codec

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4
IMAGE_TOKENS = 1600
DOCUMENT_TOKENS = 3000


def estimate(chat: dict[str, Any]) -> int:
    chars = 0
    fixed = 0
    messages = chat.get("messages")
    for msg in messages if isinstance(messages, list) else []:
        if not isinstance(msg, dict):
            continue
        fixed += MESSAGE_OVERHEAD
        text_chars, media = _content(msg.get("content"))
        chars += text_chars + _calls(msg.get("tool_calls"))
        fixed += media
        if isinstance(msg.get("reasoning_content"), str):
            chars += len(msg["reasoning_content"])
    if chat.get("tools"):
        chars += len(json_codec.dumps(chat["tools"]))
    return fixed + math.ceil(chars / CHARS_PER_TOKEN)


def _content(content: Any) -> tuple[int, int]:
    """(characters of text, fixed tokens of media) of one message's content."""
    if isinstance(content, str):
        return len(content), 0
    chars = media = 0
    for part in content if isinstance(content, list) else []:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            chars += len(part["text"])
        elif kind == "image_url":
            media += IMAGE_TOKENS
        elif kind == "file":
            media += DOCUMENT_TOKENS
    return chars, media


def _calls(calls: Any) -> int:
    chars = 0
    for call in calls if isinstance(calls, list) else []:
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            chars += sum(len(v) for v in (fn.get("name"), fn.get("arguments")) if isinstance(v, str))
    return chars

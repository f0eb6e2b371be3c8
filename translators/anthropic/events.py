"""One Anthropic SSE event: an `event:` line naming the type, then the JSON payload carrying it too."""

from __future__ import annotations

from typing import Any

from translators import json_codec


def encode_event(type_: str, payload: dict[str, Any]) -> bytes:
    body = json_codec.dumps({"type": type_, **payload})
    return b"event: " + type_.encode("ascii") + b"\ndata: " + body + b"\n\n"

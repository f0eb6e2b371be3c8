"""A chat chunk stream without its usage, for a client that did not ask for it
(`stream_options.include_usage`): the proxy asks every upstream for usage to account each call, and
OpenAI sends it only to clients that asked."""

from __future__ import annotations

from translators import json_codec
from translators.sse import SSEDecoder, SSEEvent


def without_usage(data: bytes) -> bytes:
    """Whole SSE events of chat chunks, with the usage-only chunk (no choices) dropped and a `usage`
    field on a chunk with choices removed. Bytes without a `"usage"` key come back as they are, after
    one search: a quote inside a JSON string is escaped, so only a key can match."""
    if b'"usage"' not in data:
        return data
    decoder = SSEDecoder()
    return b"".join(_without_usage(ev) for ev in [*decoder.feed(data), *decoder.finish()])


def _without_usage(ev: SSEEvent) -> bytes:
    data = ev.data
    if '"usage"' in data:
        try:
            obj = json_codec.loads(data)
        except json_codec.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and "usage" in obj:
            if not obj.get("choices"):
                return b""
            del obj["usage"]
            data = json_codec.dumps(obj).decode("utf-8")
    head = (f"event: {ev.event}\n" if ev.event else "") + (f"id: {ev.id}\n" if ev.id else "")
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"{head}{lines}\n".encode()

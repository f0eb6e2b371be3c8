"""Incremental Server-Sent Events codec.

Network chunks do not respect event boundaries: an event (or even a CRLF pair) may be split at any
byte. The decoder buffers until a blank line and yields complete events only, so callers can
translate event by event while bytes are still arriving.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from translators import json_codec


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: str
    event: str | None = None
    id: str | None = None


class SSEDecoder:
    """Feed raw bytes, get complete events. Accepts LF, CRLF and CR line endings (Gemini uses CRLF)."""

    __slots__ = ("_buf", "_data", "_event", "_id", "_pending_cr", "_utf8")

    def __init__(self) -> None:
        # Incremental: a multi-byte character split across two network chunks must survive.
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""
        self._pending_cr = False
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        # The usual chunk (whole one-line `data:` events, LF line ends) arriving between events: cut
        # out with bytes operations, as the line parser below would read it. This runs per upstream
        # chunk on the translating paths, where the parser costs ~15 us per event.
        if (
            chunk.endswith(b"\n\n")
            and not (self._buf or self._data or self._pending_cr or self._event is not None)
            and b"\r" not in chunk
            and not self._utf8.getstate()[0]
            and (events := self._whole(chunk)) is not None
        ):
            return events
        text = self._utf8.decode(chunk) if chunk else ""
        if self._pending_cr:
            # A CR ended the previous chunk; a leading LF here belongs to that same line break.
            self._pending_cr = False
            if text.startswith("\n"):
                text = text[1:]
        self._buf += text
        return list(self._drain())

    def _whole(self, chunk: bytes) -> list[SSEEvent] | None:
        """`chunk`'s events when each is one `data:` line (comments aside); None: parse it."""
        events = []
        for block in chunk[:-2].split(b"\n\n"):
            if b"\n" in block or not block.startswith((b"data:", b":")):
                return None
            if block[:1] == b"d":
                value = block[6:] if block[5:6] == b" " else block[5:]
                events.append(SSEEvent(value.decode("utf-8", errors="replace"), None, self._id))
        return events

    def finish(self) -> list[SSEEvent]:
        """End of stream: a trailing event without its blank line is still delivered."""
        self._buf += self._utf8.decode(b"", final=True)
        events = list(self._drain())
        if self._buf:
            self._line(self._buf)
            self._buf = ""
        last = self._dispatch()
        if last is not None:
            events.append(last)
        return events

    def _drain(self) -> Iterator[SSEEvent]:
        buf = self._buf
        start = 0
        n = len(buf)
        while start < n:
            cr = buf.find("\r", start)
            lf = buf.find("\n", start)
            if cr == -1 and lf == -1:
                break
            if cr != -1 and (lf == -1 or cr < lf):
                end, nxt = cr, cr + 1
                if nxt == n:
                    self._pending_cr = True
                elif buf[nxt] == "\n":
                    nxt += 1
            else:
                end, nxt = lf, lf + 1
            line = buf[start:end]
            start = nxt
            if line:
                self._line(line)
            else:
                ev = self._dispatch()
                if ev is not None:
                    yield ev
        self._buf = buf[start:]

    def _line(self, line: str) -> None:
        if line.startswith(":"):
            return  # comment / keep-alive (OpenRouter sends ": OPENROUTER PROCESSING")
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._event = None
            return None
        ev = SSEEvent(data="\n".join(self._data), event=self._event, id=self._id)
        self._data = []
        self._event = None
        return ev


def encode_data(payload: dict[str, Any] | str) -> bytes:
    """One `data:` event. Dicts are compact JSON; a str (e.g. "[DONE]") is sent as is."""
    data = payload.encode("utf-8") if isinstance(payload, str) else json_codec.dumps(payload)
    return b"data: " + data + b"\n\n"


DONE = encode_data("[DONE]")


_BOUNDARIES = (b"\n\n", b"\r\n\r\n", b"\r\r")


class EventAligner:
    """Pass-through that only releases whole events.

    Bytes go out unchanged and as soon as an event is complete, but never half an event: if the
    upstream dies mid-event, the proxy's error event is not glued onto a partial line.
    """

    __slots__ = ("_tail",)

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._tail + data if self._tail else data
        if buf.endswith(b"\n\n"):  # the usual case: the chunk ends with a whole event
            self._tail = b""
            return [buf]
        end = max(buf.rfind(b) + len(b) if buf.rfind(b) >= 0 else 0 for b in _BOUNDARIES)
        self._tail = buf[end:]
        return [buf[:end]] if end else []

    def finish(self) -> list[bytes]:
        tail, self._tail = self._tail, b""
        # A final event without its blank line is still an event (SSE dispatches at EOF).
        return [tail + b"\n\n"] if tail.strip() else []

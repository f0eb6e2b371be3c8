"""What every front-end hands back to the mitmproxy glue: a `Reply`, complete or streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from addons.records import CallRecord
from addons.upstream import UpstreamCall

JSON = {"content-type": "application/json"}
SSE = {"content-type": "text/event-stream", "cache-control": "no-cache"}


@dataclass(slots=True)
class StreamTranscript:
    """What a relayed stream sent, and the completion it amounts to once it ended (history and mitmweb
    both want it: reassembled once)."""

    sent: bytearray = field(default_factory=bytearray)
    completion: dict[str, Any] | None = None


@dataclass(slots=True)
class Reply:
    """A complete body, or a stream of SSE bytes the glue hands to the relay."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    stream: AsyncIterator[bytes] | None = None
    upstream: UpstreamCall | None = None  # what really left the proxy (carries the key: mask before display)
    transcript: StreamTranscript | None = None
    record: CallRecord | None = None  # what mitmweb's comment and metadata show

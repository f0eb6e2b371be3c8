"""What every front-end hands back to the mitmproxy glue: a `Reply`, complete or streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from addons.records import CallRecord
from addons.upstream import UpstreamCall
from translators import json_codec

JSON = {"content-type": "application/json"}
SSE = {"content-type": "text/event-stream", "cache-control": "no-cache"}


@dataclass(slots=True)
class StreamTranscript:
    """What a relayed stream sent, and the completion it amounts to once it ended (history and mitmweb
    both want it: reassembled once)."""

    sent: bytearray = field(default_factory=bytearray)
    completion: dict[str, Any] | None = None
    shown: dict[str, Any] | None = None  # the answer in the client's dialect, when it is not chat


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


@dataclass(slots=True)
class Inbound:
    """A client request in the pipeline's terms: the internal chat request it amounts to."""

    chat: dict[str, Any]  # OpenAI chat shape plus the pivot's extensions (README, "Front-ends")
    model: str  # as the client asked for it
    stream: bool
    state: Any = None  # the front-end's own parsed request, for rendering the answer
    notes: list[str] = field(default_factory=list)  # what was left out or changed, for the flow comment


class Frontend(Protocol):
    """A client dialect. The pipeline speaks OpenAI chat; a front-end translates at both ends."""

    name: str  # in history rows and flow metadata

    def session_id(self, headers: Mapping[str, str]) -> str | None: ...

    async def parse(self, raw: bytes, headers: Mapping[str, str]) -> Inbound:
        """Raises translators.openai.types.RequestError (or a subclass) for an unusable request."""
        ...

    def error(self, reply: Reply) -> Reply:
        """An internal (OpenAI-shaped) error reply in this dialect."""
        ...

    async def answer(self, reply: Reply, inbound: Inbound) -> Reply:
        """An internal success reply (a chat completion, or a chat chunk stream) in this dialect."""
        ...


class Renderer(Protocol):
    """Internal chat chunk SSE bytes (any split) -> the client's dialect, incrementally."""

    def feed(self, data: bytes) -> list[bytes]: ...

    def finish(self) -> list[bytes]: ...


async def rendered(
    source: AsyncIterator[bytes], renderer: Renderer, done: Callable[[], Awaitable[None]]
) -> AsyncIterator[bytes]:
    """`source` in the client's dialect as it arrives, one write per upstream chunk; `done` runs once the
    stream has ended (the internal transcript is complete by then)."""
    async for data in source:
        if out := b"".join(renderer.feed(data)):
            yield out
    if out := b"".join(renderer.finish()):
        yield out
    await done()


def render_whole(body: bytes, renderer: Renderer) -> bytes:
    """A complete chunk stream (the proxy's own answer to a streaming request), rendered at once."""
    return b"".join([*renderer.feed(body), *renderer.finish()])


def is_event_stream(reply: Reply) -> bool:
    return reply.headers.get("content-type", "").startswith("text/event-stream")


def loads_or_none(body: bytes) -> Any:
    """The JSON of a reply body, or None when it is none (an upstream's HTML error page, say)."""
    try:
        return json_codec.loads(body)
    except (UnicodeDecodeError, json_codec.JSONDecodeError):
        return None

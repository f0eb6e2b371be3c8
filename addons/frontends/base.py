"""What every front-end hands back to the mitmproxy glue: a `Reply`, complete or streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from addons.records import CallRecord
from addons.upstream import UpstreamCall
from translators import json_codec

JSON = {"content-type": "application/json"}
# An SSE comment every dialect's client skips: sent while a committed stream waits for content. The same
# object all the way, so renderers pass it on by identity without parsing it.
KEEP_ALIVE = b": keep-alive\n\n"
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


@dataclass(slots=True)
class Rendering:
    """How a dialect renders an internal success reply."""

    renderer: Callable[[], Renderer]  # a fresh stream renderer
    whole: Callable[[dict[str, Any]], dict[str, Any]]  # a chat.completion -> the dialect's answer
    # The dialect's answer once a stream has ended (mitmweb shows it): by default `whole` of the transcript.
    final: Callable[[Renderer, dict[str, Any] | None], dict[str, Any] | None] | None = None
    keep: Callable[[dict[str, Any]], Awaitable[None]] | None = None  # e.g. the response store

    def ended(self, renderer: Renderer, completion: dict[str, Any] | None) -> dict[str, Any] | None:
        if self.final is not None:
            return self.final(renderer, completion)
        return self.whole(completion) if completion is not None else None


async def render_answer(reply: Reply, how: Rendering) -> Reply:
    """An internal success reply in the dialect: a stream as it arrives (one write per upstream chunk),
    the proxy's own complete chunk stream at once, a chat.completion as one object."""
    if reply.stream is not None:
        reply.stream = _rendered(reply.stream, how, reply.transcript or StreamTranscript())
        return reply
    if is_event_stream(reply):  # the proxy's own answer to a streaming request
        renderer = how.renderer()
        reply.body = b"".join([*renderer.feed(reply.body), *renderer.finish()])
        reply.headers.update(SSE)
        answer = how.ended(renderer, None)
    else:
        answer = how.whole(loads_or_none(reply.body) or {})
        reply.body = json_codec.dumps(answer)
    if answer is not None and how.keep is not None:
        await how.keep(answer)
    return reply


async def _rendered(
    source: AsyncIterator[bytes], how: Rendering, transcript: StreamTranscript
) -> AsyncIterator[bytes]:
    renderer = how.renderer()
    async for data in source:
        if data is KEEP_ALIVE:
            yield data
            continue
        if out := b"".join(renderer.feed(data)):
            yield out
    if out := b"".join(renderer.finish()):
        yield out
    # The internal transcript is complete once the source has ended.
    transcript.shown = how.ended(renderer, transcript.completion)
    if transcript.shown is not None and how.keep is not None:
        await how.keep(transcript.shown)


def is_event_stream(reply: Reply) -> bool:
    return reply.headers.get("content-type", "").startswith("text/event-stream")


def loads_or_none(body: bytes) -> Any:
    """The JSON of a reply body, or None when it is none (an upstream's HTML error page, say)."""
    try:
        return json_codec.loads(body)
    except (UnicodeDecodeError, json_codec.JSONDecodeError):
        return None

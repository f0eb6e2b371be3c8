"""The stream commit point: a streamed attempt reaches the client only once it carries content.

Until the first event with text, a tool call or reasoning, nothing has gone out (not even the status
line), so an upstream stream that ends empty, opens with an error event, breaks off, or finishes without
content is a failed attempt like a 429 or 5xx, and the next key or route element can still answer. A
model that thinks longer than `commit_timeout` without content is committed anyway: the client gets its
200 and SSE comments as keep-alives until content comes, so slow thinkers never trip client timeouts.

Only the events before the commit are decoded (usually one or two); after it, chunks pass untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from addons.backends.base import StreamTranslator
from addons.frontends.base import KEEP_ALIVE
from addons.upstream import Answer, UpstreamError
from translators import json_codec
from translators.openai.synthetic import error_type_for
from translators.sse import SSEDecoder

ANSWERS = ("content_filter", "length")  # finishes that are answers even without content
KEEP_ALIVE_EVERY = 5.0  # seconds between keep-alives while a committed stream has no content yet
_STATUS_BY_TYPE = {t: s for s, t in ((s, error_type_for(s)) for s in (400, 401, 403, 404, 408, 429))}


@dataclass(slots=True)
class Refused:
    """Why an attempt failed before its commit, as an HTTP error would say it."""

    status: int
    message: str
    code: str | None
    body: dict[str, Any]  # OpenAI error JSON, for the client
    empty: bool = False  # a contentless finish: worth one retry on the same target
    upstream: bytes = b""  # the provider's own error event, for its backend's failure() (retry delays)


@dataclass(slots=True)
class Probe:
    """An upstream stream read up to its commit point."""

    head: list[bytes] = field(default_factory=list)  # translated events read before the commit
    refused: Refused | None = None
    pending: asyncio.Future[bytes] | None = None  # a read in flight when the commit timed out
    keep_alive_every: float = KEEP_ALIVE_EVERY
    rest: AsyncIterator[bytes] | None = None
    finished: bool = False  # the upstream stream ended during the probe (the translator is finished)


async def probe(resp: Answer, translator: StreamTranslator, commit_timeout: float) -> Probe:
    """Read until content, a failure, or `commit_timeout` (then commit with the read still pending)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + commit_timeout
    chunks = aiter(resp.chunks())
    # A short commit_timeout (a client that gives up early) gets its keep-alives as often.
    out = Probe(rest=chunks, keep_alive_every=min(KEEP_ALIVE_EVERY, commit_timeout))
    seen = _Seen()
    raw = bytearray()  # what the provider sent before the commit (little: a few events at most)
    while True:
        read = asyncio.ensure_future(anext(chunks))
        done, _ = await asyncio.wait({read}, timeout=max(0.0, deadline - loop.time()))
        if not done:
            out.pending = read
            return out
        try:
            data = read.result()
            raw += data
            events = translator.feed(data)
        except StopAsyncIteration:
            events, seen.ended, out.finished = translator.finish(), True, True
        except UpstreamError as e:
            body = {"error": {"message": e.message, "type": error_type_for(e.status), "code": e.code}}
            out.refused = Refused(e.status, e.message, e.code, body)
            return out
        out.head.extend(events)
        if (verdict := seen.scan(events)) is not None:
            out.refused = None if verdict == "content" else _refusal(verdict, seen, bytes(raw))
            return out


async def rest_of(probe: Probe) -> AsyncIterator[bytes]:
    """The upstream chunks after the commit; KEEP_ALIVE while a timed-out commit waits for data."""
    assert probe.rest is not None
    if probe.finished:
        return
    pending = probe.pending
    if pending is not None:
        yield KEEP_ALIVE  # at once: the client has waited commit_timeout already
    while pending is not None:
        done, _ = await asyncio.wait({pending}, timeout=probe.keep_alive_every)
        if not done:
            yield KEEP_ALIVE
            continue
        try:
            yield pending.result()
        except StopAsyncIteration:
            return
        pending = None
    async for data in probe.rest:
        yield data


def abandon(probe: Probe) -> None:
    """A refused attempt: its read in flight (if any) goes nowhere."""
    if probe.pending is not None:
        probe.pending.cancel()
        with contextlib.suppress(BaseException):
            probe.pending.exception()


class _Seen:
    """What the translated events before the commit amount to."""

    __slots__ = ("decoder", "ended", "error", "finish")

    def __init__(self) -> None:
        self.decoder = SSEDecoder()
        self.ended = False
        self.error: dict[str, Any] | None = None
        self.finish: str | None = None

    def scan(self, events: list[bytes]) -> str | None:
        """ "content", "error", "empty" (finished or ended without content), or None: read on."""
        for ev in self.decoder.feed(b"".join(events)):
            if ev.data.startswith("["):  # [DONE]
                self.ended = True
                continue
            try:
                obj = json_codec.loads(ev.data)
            except (json_codec.JSONDecodeError, UnicodeDecodeError):
                continue
            if not isinstance(obj, dict):
                continue
            if isinstance(obj.get("error"), dict):
                if self.ended:  # the translator's word for a stream that ended with nothing in it
                    return "empty"
                self.error = obj["error"]
                return "error"
            for choice in obj.get("choices") or []:
                # A refusal (content_filter) or a cut (length) is an answer the client must see.
                if _has_content(choice.get("delta") or {}) or choice.get("finish_reason") in ANSWERS:
                    return "content"
                self.finish = self.finish or choice.get("native_finish_reason") or choice.get("finish_reason")
        return "empty" if self.ended or self.finish else None


def _has_content(delta: dict[str, Any]) -> bool:
    return bool(
        delta.get("content")
        or delta.get("tool_calls")
        or delta.get("reasoning_content")
        or delta.get("reasoning")
        or delta.get("reasoning_signature")
    )


def _refusal(verdict: str, seen: _Seen, raw: bytes) -> Refused:
    if verdict == "error" and seen.error is not None:
        err = seen.error
        status = _status_of(err)
        message = str(err.get("message") or "the upstream stream failed")
        return Refused(status, message, err.get("code"), {"error": err}, upstream=_error_event(raw))
    why = f"finish_reason {seen.finish}" if seen.finish else "the stream ended"
    message = f"The model returned an empty answer ({why})."
    body = {"error": {"message": message, "type": "api_error", "code": "empty_answer"}}
    return Refused(502, message, "empty_answer", body, empty=True)


def _error_event(raw: bytes) -> bytes:
    """The data of the provider's own event that holds `"error"`, as the error body it amounts to."""
    decoder = SSEDecoder()
    for ev in [*decoder.feed(raw), *decoder.finish()]:
        if '"error"' in ev.data:
            return ev.data.encode()
    return b""


def _status_of(err: dict[str, Any]) -> int:
    code = err.get("code")
    if isinstance(code, int) and 400 <= code <= 599:
        return code
    if code in ("upstream_timeout", "timeout"):
        return 504
    if isinstance(code, str) and "overloaded" in code:
        return 503
    return _STATUS_BY_TYPE.get(str(err.get("type")), 502)

"""The bench's load client counts what the Messages and Responses rows measure: one content event per
upstream chunk (whatever the dialect wraps it in), the first of them for time-to-first-text, and a
stream as complete only when its closing event is the last one. Streams are rendered by the proxy's
own translators from the bench upstream's bytes, so a change in their wire format shows up here."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import stats
from bench.client import BadResponse, Conn, Job, StreamRecord
from bench.loadgen import Spec
from bench.upstream import openai_stream
from bench.wire import PROXY_MESSAGES, PROXY_OPENROUTER_MODEL, WIRES, Api, request_body
from translators import anthropic, responses

CHUNKS = 50
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def _dechunk(data: bytes) -> bytes:
    out, pos = bytearray(), 0
    while True:
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end], 16)
        if size == 0:
            return bytes(out)
        out += data[end + 2 : end + 2 + size]
        pos = end + 4 + size


UPSTREAM_SSE = _dechunk(b"".join(openai_stream(CHUNKS)))


def _rendered(renderer: Any) -> bytes:
    return b"".join([*renderer.feed(UPSTREAM_SSE), *renderer.finish()])


def _responses_renderer() -> responses.ResponsesStream:
    body = responses.parse(request_body("responses", PROXY_OPENROUTER_MODEL, True))
    req = responses.to_chat(body, None, lambda *_: {})
    return responses.ResponsesStream(req, "resp_bench", 0, None)


STREAMS: dict[Api, bytes] = {
    "openai": UPSTREAM_SSE,
    "messages": _rendered(anthropic.MessagesStream(PROXY_OPENROUTER_MODEL, [])),
    "responses": _rendered(_responses_renderer()),
}
FRAMES = {"openai": CHUNKS + 1, "messages": CHUNKS + 5, "responses": CHUNKS + 8}  # + [DONE] / the envelope


class _Sink:
    def write(self, data: bytes) -> None:
        pass


def _pieces(body: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = [0, *sorted({c for c in cuts if 0 < c < len(body)}), len(body)]
    return [body[a:b] for a, b in itertools.pairwise(points)]


def _read(api: Api, body: bytes, cuts: Iterable[int] = ()) -> StreamRecord:
    """Conn.stream over `body` served as one HTTP chunk per piece (the SSE parser's input splits)."""
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in _pieces(body, cuts)) + b"0\r\n\r\n"

    async def go() -> StreamRecord:
        reader = asyncio.StreamReader()
        reader.feed_data(HEAD + chunked)
        reader.feed_eof()
        conn = Conn(reader, cast(asyncio.StreamWriter, _Sink()))
        return await conn.stream(Job(b"", True, CHUNKS, WIRES[api], CHUNKS))

    return asyncio.run(go())


@pytest.mark.parametrize("api", list(STREAMS))
def test_one_content_event_per_upstream_chunk(api: Api) -> None:
    record = _read(api, STREAMS[api])
    assert (record.events, record.frames, record.done) == (CHUNKS, FRAMES[api], True)
    assert record.ttfb_ms == record.arrivals_ms[0]


@settings(max_examples=40, deadline=None)
@given(api=st.sampled_from(list(STREAMS)), data=st.data())
def test_any_split_of_the_stream_counts_the_same(api: Api, data: st.DataObject) -> None:
    body = STREAMS[api]
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=40))
    record = _read(api, body, cuts)
    assert (record.events, record.frames, record.done) == (CHUNKS, FRAMES[api], True)


@pytest.mark.parametrize("api", ["messages", "responses"])
def test_an_event_after_the_closing_one_spoils_the_stream(api: Api) -> None:
    with pytest.raises(BadResponse, match="done=False"):
        _read(api, STREAMS[api] + b'event: error\ndata: {"type":"error"}\n\n')


@pytest.mark.parametrize("api", ["messages", "responses"])
def test_a_stream_cut_before_its_closing_event_is_incomplete(api: Api) -> None:
    body = STREAMS[api]
    cut = body.rindex(b"event: ", 0, len(body) - 1)  # drop the closing event
    with pytest.raises(BadResponse, match="done=False"):
        _read(api, body[:cut])


def test_messages_jobs_say_how_many_upstream_chunks_they_carry() -> None:
    spec = Spec("stream", 1, PROXY_MESSAGES, api="messages", model=PROXY_OPENROUTER_MODEL)
    full, short = spec.job(True), spec.job(True, max_tokens=2)
    assert (full.chunks, full.expect_events, short.chunks, short.expect_events) == (CHUNKS, CHUNKS, 2, 2)
    assert b"anthropic-version: " in full.request and b'"max_tokens":2,' in short.request
    # The Gemini chat path adds a finish chunk: expected as an event, not counted as an upstream chunk.
    gemini = Spec("stream", 1, "/v1/chat/completions", extra_events=1).job(True)
    assert (gemini.chunks, gemini.expect_events) == (CHUNKS, CHUNKS + 1)


def test_cpu_per_chunk_divides_by_upstream_chunks_not_events() -> None:
    raw = {"events": 110, "chunks": 100, "cpu_s": {"target": 0.03}, "ttfbs_ms": [], "window_s": 1.0}
    figures = stats.stream_load(raw)
    assert figures["cpu_us_per_chunk"] == pytest.approx(300.0)
    assert figures["cpu_us_per_event"] == pytest.approx(0.03 / 110 * 1e6)

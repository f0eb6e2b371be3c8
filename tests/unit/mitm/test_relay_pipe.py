"""The relay's in-process connections: what mitmproxy's connection handler and the relay rely on."""

from __future__ import annotations

import asyncio
import functools
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from addons.mitm import relay_pipe
from addons.mitm.relay import StreamRelay
from addons.mitm.relay_pipe import HIGH_WATER, PipeReader, PipeWriter


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """The test on a loop of its own (the suite's tests run their coroutines themselves)."""

    @functools.wraps(test)
    def sync() -> None:
        asyncio.run(test())

    return sync


async def _chunks(*parts: bytes) -> object:
    for p in parts:
        yield p


@run
async def test_mitmproxy_connection_to_the_relay_is_a_pipe_served_by_the_relay() -> None:
    relay = StreamRelay()
    await relay.start()
    try:
        url = relay.register(_chunks(b"data: a\n\n", b"data: b\n\n"))  # type: ignore[arg-type]
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        assert isinstance(reader, PipeReader) and isinstance(writer, PipeWriter)
        path = url.split(str(relay.port), 1)[1]
        writer.write(f"GET {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n".encode())
        got = b""
        while not got.endswith(b"0\r\n\r\n"):
            got += await asyncio.wait_for(reader.read(65535), 5)
        assert got.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"9\r\ndata: a\n\n\r\n9\r\ndata: b\n\n\r\n0\r\n\r\n" in got
        writer.close()
        assert relay.active == 0
    finally:
        relay.close()


@run
async def test_closing_mitmproxy_side_cancels_a_silent_upstream() -> None:
    relay = StreamRelay()
    await relay.start()
    closed = asyncio.Event()

    async def silent() -> object:
        try:
            yield b"data: first\n\n"
            await asyncio.sleep(60)
            yield b"never"
        finally:
            closed.set()

    try:
        url = relay.register(silent())  # type: ignore[arg-type]
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        path = url.split(str(relay.port), 1)[1]
        writer.write(f"GET {path} HTTP/1.1\r\ncontent-length: 0\r\n\r\n".encode())
        got = b""
        while b"first" not in got:
            got += await asyncio.wait_for(reader.read(65535), 5)
        writer.close()  # the client hung up: mitmproxy closes its server connection
        await asyncio.wait_for(closed.wait(), 5)
        assert await reader.read(65535) == b""
    finally:
        relay.close()


@run
async def test_a_writer_waits_while_its_reader_is_behind_and_stops_once_it_is_gone() -> None:
    to_relay, back = relay_pipe._Pipe(), relay_pipe._Pipe()
    writer, reader = PipeWriter(to_relay, back, ("127.0.0.1", 1)), PipeReader(to_relay)
    writer.write(b"x" * (HIGH_WATER + 1))
    drain = asyncio.ensure_future(writer.drain())
    await asyncio.sleep(0.01)
    assert not drain.done()  # as a full socket buffer would hold it
    assert len(await reader.read(HIGH_WATER)) == HIGH_WATER
    await asyncio.wait_for(drain, 5)
    writer.write(b"y" * HIGH_WATER)
    drain = asyncio.ensure_future(writer.drain())
    await asyncio.sleep(0.01)
    PipeWriter(back, to_relay, ("127.0.0.1", 1)).close()  # the reading side closes the connection
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(drain, 5)


@run
async def test_reads_split_and_join_as_a_stream_reader_does() -> None:
    pipe = relay_pipe._Pipe()
    reader = PipeReader(pipe)
    pipe.put(b"GET / HTTP/1.1\r\n")
    head = asyncio.ensure_future(reader.readuntil(b"\r\n\r\n"))
    await asyncio.sleep(0)
    assert not head.done()
    pipe.put(b"\r\nbody")
    assert await head == b"GET / HTTP/1.1\r\n\r\n"
    assert await reader.readexactly(2) == b"bo"
    pipe.end()
    with pytest.raises(asyncio.IncompleteReadError):
        await reader.readexactly(3)
    assert await reader.read(10) == b"dy"
    assert await reader.read(10) == b""


@run
async def test_every_other_address_is_connected_to_for_real() -> None:
    relay = StreamRelay()
    await relay.start()  # installs the pipe for the relay's own address only
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        assert isinstance(writer, asyncio.StreamWriter)
        assert writer.get_extra_info("socket").family == socket.AF_INET
        writer.close()
    finally:
        server.close()
        relay.close()
    # Once the relay is closed its address is an ordinary one again.
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", relay.port)

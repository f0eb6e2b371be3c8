"""Compressed request bodies: every coding a client may use is inflated before any front-end reads it;
a broken, unknown or inflating-past-the-limit body is an error in the client's own dialect, found while
inflating (never after holding a bomb whole)."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable
from typing import Any

import brotli
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from addons.pipeline import bodies, dispatch
from addons.upstream import UpstreamCall
from tests.unit.pipeline.conftest import MakeCore, run
from tests.unit.pipeline.mock_upstream import MockAnswer

try:
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:
    from backports import zstd  # type: ignore[import-not-found, no-redef]

CODINGS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": zstd.compress,
}


@given(st.binary(max_size=5000), st.sampled_from(sorted(CODINGS)))
@settings(max_examples=60, deadline=None)
def test_any_body_round_trips(data: bytes, coding: str) -> None:
    assert bodies.decoded(CODINGS[coding](data), {"content-encoding": coding}, 10_000) == data


def test_raw_deflate_and_stacked_codings() -> None:
    data = b"x" * 1000
    raw = zlib.compress(data)[2:-4]  # some clients send deflate without the zlib wrapper
    assert bodies.decoded(raw, {"content-encoding": "deflate"}, 2000) == data
    stacked = brotli.compress(gzip.compress(data))  # applied gzip first, then br
    assert bodies.decoded(stacked, {"content-encoding": "gzip, br"}, 2000) == data


@pytest.mark.parametrize("coding", sorted(CODINGS))
def test_a_bomb_is_refused_while_it_inflates(coding: str) -> None:
    bomb = CODINGS[coding](b"\0" * (64 * 1024 * 1024))
    with pytest.raises(bodies.BodyError) as e:
        bodies.decoded(bomb, {"content-encoding": coding}, 1024 * 1024)
    assert e.value.status == 413 and "LLM_MAX_REQUEST_BYTES" in str(e.value)


@pytest.mark.parametrize("coding", sorted(CODINGS))
def test_broken_and_truncated_bodies_are_400(coding: str) -> None:
    whole = CODINGS[coding](b'{"model": "m", "messages": []}' * 50)
    for body in (whole[: len(whole) // 2], b"not compressed at all"):
        with pytest.raises(bodies.BodyError) as e:
            bodies.decoded(body, {"content-encoding": coding}, 1_000_000)
        assert e.value.status == 400 and coding in str(e.value)


def test_unknown_coding_is_415() -> None:
    with pytest.raises(bodies.BodyError) as e:
        bodies.decoded(b"abc", {"content-encoding": "compress"}, 100)
    assert e.value.status == 415 and "gzip, deflate, br or zstd" in str(e.value)


def _ok(call: UpstreamCall) -> MockAnswer:
    reply = {"id": "x", "object": "chat.completion", "created": 1, "model": "m",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                          "finish_reason": "stop"}]}  # fmt: skip
    return MockAnswer(200, json.dumps(reply).encode())


def _post(core: Any, path: str, body: bytes, headers: dict[str, str]) -> Any:
    reply = run(dispatch.handle(core, "POST", path, headers, body))
    assert reply is not None
    return reply


BODIES = {
    "/v1/chat/completions": {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "a"}]},
    "/v1/messages": {
        "model": "openai/gpt-4o-mini",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "a"}],
    },
    "/v1/responses": {"model": "openai/gpt-4o-mini", "input": "a"},
}


@pytest.mark.parametrize("path", sorted(BODIES))
def test_every_dialect_reads_a_compressed_body(make_core: MakeCore, path: str) -> None:
    core, upstream = make_core(_ok)
    body = gzip.compress(json.dumps(BODIES[path]).encode())
    reply = _post(core, path, body, {"content-encoding": "gzip"})
    assert reply.status == 200, reply.body
    assert json.loads(upstream.calls[-1].body)["messages"][-1]["content"] in (
        "a",
        [{"type": "text", "text": "a"}],
    )


@pytest.mark.parametrize("path", sorted(BODIES))
def test_a_bad_body_is_an_error_in_the_dialect(make_core: MakeCore, path: str) -> None:
    core, upstream = make_core(_ok)
    reply = _post(core, path, b"\x1f\x8bnot gzip", {"content-encoding": "gzip"})
    assert reply.status == 400 and not upstream.calls
    err = json.loads(reply.body)
    if path == "/v1/messages":
        assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    else:
        assert "not valid gzip" in err["error"]["message"]

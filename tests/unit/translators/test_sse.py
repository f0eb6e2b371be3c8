from __future__ import annotations

import itertools
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from translators.openai.assemble import assemble_completion
from translators.sse import DONE, EventAligner, SSEDecoder, SSEEvent, encode_data

STREAM = (
    b": OPENROUTER PROCESSING\n\n"
    b'data: {"a": 1}\n\n'
    b"event: ping\r\ndata: line1\r\ndata: line2\r\n\r\n"
    b"data: cr only\r\r"
    b"id: 7\ndata: [DONE]\n\n"
)
EXPECTED = [
    SSEEvent('{"a": 1}'),
    SSEEvent("line1\nline2", event="ping"),
    SSEEvent("cr only"),
    SSEEvent("[DONE]", id="7"),
]


def decode(chunks: list[bytes]) -> list[SSEEvent]:
    d = SSEDecoder()
    out: list[SSEEvent] = []
    for c in chunks:
        out += d.feed(c)
    return out + d.finish()


def test_whole_stream() -> None:
    assert decode([STREAM]) == EXPECTED


def test_split_at_every_byte_position() -> None:
    for i in range(len(STREAM) + 1):
        assert decode([STREAM[:i], STREAM[i:]]) == EXPECTED, i


def test_byte_by_byte() -> None:
    assert decode([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
@settings(max_examples=200, deadline=None)
def test_random_splits(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    pieces = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    assert decode(pieces) == EXPECTED


def test_unterminated_final_event_is_delivered() -> None:
    assert decode([b"data: tail"]) == [SSEEvent("tail")]


def test_utf8_split_inside_a_character() -> None:
    raw = encode_data({"t": "héllo ✓"})
    for i in range(len(raw)):
        d = SSEDecoder()
        # a multi-byte character cut in two must not be mangled
        events = d.feed(raw[:i]) + d.feed(raw[i:]) + d.finish()
        assert [json.loads(e.data) for e in events] == [{"t": "héllo ✓"}], i


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=10))
@settings(max_examples=200, deadline=None)
def test_aligner_releases_whole_events_only(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    pieces = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    a = EventAligner()
    out = [o for p in pieces for o in a.feed(p)] + a.finish()
    assert b"".join(out) == STREAM
    for o in out:
        assert o.endswith((b"\n\n", b"\r\r", b"\r\n\r\n"))


def test_aligner_terminates_a_trailing_partial_event() -> None:
    a = EventAligner()
    assert a.feed(b'data: {"x":1}\n\ndata: {"y"') == [b'data: {"x":1}\n\n']
    assert a.finish() == [b'data: {"y"\n\n']


def test_assemble_text_tools_usage_and_error() -> None:
    def ch(delta: dict, finish: str | None = None, **kw: object) -> bytes:
        return encode_data(
            {
                "id": "c1",
                "model": "m",
                "created": 1,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **kw,
            }
        )

    sse = b"".join(
        [
            ch({"role": "assistant", "content": "Hel"}),
            ch({"content": "lo"}),
            ch(
                {"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": '{"a"'}}]}
            ),
            ch({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
            ch({}, "tool_calls"),
            encode_data({"id": "c1", "choices": [], "usage": {"total_tokens": 3}}),
            DONE,
        ]
    )
    out = assemble_completion(sse)
    msg = out["choices"][0]["message"]
    assert msg["content"] == "Hello"
    assert msg["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    ]
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    assert out["usage"] == {"total_tokens": 3}
    assert assemble_completion(encode_data({"error": {"message": "boom"}}))["error"] == {"message": "boom"}


# What SSE bodies are made of, the awkward parts included: bare and spaced `data:`, CR and CRLF line ends,
# comments, other fields, a multi-byte character and a cut one, and lines that only look like fields.
_SSE_PARTS = st.sampled_from(
    [b"data: ", b"data:", b"\n", b"\n\n", b"\r\n", b"\r", b":", b" x", b'{"a":1}', b"event: e", b"id: 3",
     b"\xc3\xa9", b"\xc3", b"[DONE]", b"d", b"ata"]
)  # fmt: skip


@settings(max_examples=3000)
@given(st.lists(_SSE_PARTS, max_size=30), st.lists(st.integers(0, 200), max_size=6))
def test_decoder_reads_any_split_as_it_reads_byte_by_byte(parts: list[bytes], cuts: list[int]) -> None:
    """Whole chunks take a bytes-only way through feed(); byte by byte never does: both must agree."""
    body = b"".join(parts)
    bounds = sorted({min(c, len(body)) for c in cuts} | {0, len(body)})
    chunked, single = SSEDecoder(), SSEDecoder()
    got = [ev for a, b in itertools.pairwise(bounds) for ev in chunked.feed(body[a:b])]
    want = [ev for i in range(len(body)) for ev in single.feed(body[i : i + 1])]
    assert got + chunked.finish() == want + single.finish()


def test_decoder_keeps_the_last_id_on_whole_chunks() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"id: 7\ndata: a\n\n") == [SSEEvent("a", id="7")]
    assert dec.feed(b"data: b\n\ndata: c\n\n") == [SSEEvent("b", id="7"), SSEEvent("c", id="7")]

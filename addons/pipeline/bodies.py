"""Compressed request bodies (`Content-Encoding: gzip, deflate, br, zstd`: some clients compress large
agent requests), decoded with a bound: a small body that inflates past the request limit is refused
while it inflates, never held whole."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping

import brotli

try:  # Python 3.14's own zstd, else the backport mitmproxy installs on older Pythons
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:
    from backports import zstd  # type: ignore[import-not-found, no-redef]

STEP = 64 * 1024  # output produced per step: the limit is checked this often
BROTLI_SLICE = 64  # input bytes per step where Brotli cannot bound its output


class BodyError(ValueError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def decoded(body: bytes, headers: Mapping[str, str], limit: int) -> bytes:
    """The body as sent, decoded by its Content-Encoding (outermost last). Raises BodyError: 415 for an
    unknown coding, 400 for a broken body, 413 past `limit`."""
    codings = [c.strip().lower() for c in headers.get("content-encoding", "").split(",") if c.strip()]
    for coding in reversed(codings):
        if coding == "identity":
            continue
        inflate = _DECODERS.get(coding)
        if inflate is None:
            raise BodyError(
                f"Content-Encoding {coding!r} is not supported; use gzip, deflate, br or zstd.", 415
            )
        try:
            body = inflate(body, limit)
        except BodyError:
            raise
        except Exception as e:
            raise BodyError(f"Request body is not valid {coding} data: {e}", 400) from None
    return body


def _zlib(*wbits: int) -> Callable[[bytes, int], bytes]:
    """Tried with each window setting in turn (deflate: zlib-wrapped as the RFC says, else raw)."""

    def inflate(data: bytes, limit: int) -> bytes:
        for n, bits in enumerate(wbits):
            try:
                return _inflate(zlib.decompressobj(bits), data, limit)
            except zlib.error:
                if n == len(wbits) - 1:
                    raise
        raise AssertionError("unreachable")

    return inflate


def _inflate(d: zlib._Decompress, data: bytes, limit: int) -> bytes:
    out = bytearray(d.decompress(data, STEP))
    while len(out) <= limit and (chunk := d.decompress(d.unconsumed_tail, STEP)):
        out += chunk
    _check(out, limit)
    if not d.eof:
        raise ValueError("truncated stream")
    return bytes(out)


def _brotli(data: bytes, limit: int) -> bytes:
    d = brotli.Decompressor()
    if not hasattr(d, "can_accept_more_data"):  # Brotli < 1.2 (mitmproxy 12.1 pins it): no output bound
        return _brotli_sliced(d, data, limit)
    out = bytearray(d.process(data, output_buffer_limit=STEP))
    while not d.is_finished() and len(out) <= limit:
        chunk = d.process(b"", output_buffer_limit=STEP)
        if not chunk and d.can_accept_more_data():
            raise ValueError("truncated stream")  # it wants input there is no more of
        out += chunk
    return _check(out, limit)


def _brotli_sliced(d: brotli.Decompressor, data: bytes, limit: int) -> bytes:
    """Input in small slices, the limit checked after each: what one slice can inflate to is bounded by
    Brotli's block sizes (a few MB), so a bomb is stopped a few MB past the limit at worst."""
    out = bytearray()
    for start in range(0, len(data), BROTLI_SLICE):
        out += d.process(data[start : start + BROTLI_SLICE])
        _check(out, limit)
    if not d.is_finished():
        raise ValueError("truncated stream")
    return bytes(out)


def _zstd(data: bytes, limit: int) -> bytes:
    d = zstd.ZstdDecompressor()
    out = bytearray(d.decompress(data, max_length=STEP))
    while not d.eof and len(out) <= limit:
        chunk = d.decompress(b"", max_length=STEP)
        if not chunk and d.needs_input:
            raise ValueError("truncated stream")
        out += chunk
    return _check(out, limit)


def _check(out: bytearray, limit: int) -> bytes:
    if len(out) > limit:
        raise BodyError(
            f"Request body inflates past {limit} bytes; this proxy accepts at most {limit} bytes "
            "(LLM_MAX_REQUEST_BYTES).",
            413,
        )
    return bytes(out)


_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": _zlib(16 + zlib.MAX_WBITS),
    "x-gzip": _zlib(16 + zlib.MAX_WBITS),
    "deflate": _zlib(32 + zlib.MAX_WBITS, -zlib.MAX_WBITS),  # zlib or gzip header, else raw deflate
    "br": _brotli,
    "zstd": _zstd,
}

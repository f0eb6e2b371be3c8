"""The proxy's HTTP client towards providers: one pooled aiohttp session, failures as clear proxy errors.

aiohttp rather than httpx on this path: its C HTTP parser makes a request several times cheaper than
httpx/httpcore (measured: bench/README.md), and the upstream call is most of what the proxy does per
request. Nothing outside this module sees an aiohttp type.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

import aiohttp
from multidict import CIMultiDictProxy


@dataclass(slots=True)
class UpstreamCall:
    """One HTTP request to a provider. `headers` carry the real key; mask before showing them anywhere."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    stream: bool
    secret_headers: tuple[str, ...] = field(default=("authorization",))


Headers = Mapping[str, str]  # case-insensitive in practice (a CIMultiDictProxy)


class UpstreamError(Exception):
    """The provider could not be reached, stalled, or broke off. Messages never contain keys."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


class Answer(Protocol):
    """A provider's answer whose head has arrived: what the pipeline reads of it."""

    status: int
    headers: Headers
    host: str

    async def read(self) -> bytes: ...

    def chunks(self) -> AsyncIterator[bytes]: ...

    def close(self) -> None: ...


class Upstream(Protocol):
    """What the pipeline needs of a provider HTTP client (tests pass an in-process fake)."""

    async def open(self, call: UpstreamCall) -> Answer: ...

    async def get_json(self, url: str, headers: Headers, params: Mapping[str, str] | None = None) -> Any: ...

    async def aclose(self) -> None: ...


class UpstreamResponse:
    """A provider's answer whose head has arrived; read or stream the body, then close."""

    def __init__(self, resp: aiohttp.ClientResponse, timeout: float) -> None:
        self._resp = resp
        self._timeout = timeout
        self.status: int = resp.status
        self.headers: CIMultiDictProxy[str] = resp.headers
        self.host: str = resp.url.host or "?"

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        except Exception as e:
            raise self._broken(e, "broke off its answer") from None

    async def chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive (decompressed)."""
        content = self._resp.content
        try:
            async for data in content.iter_any():
                yield data
        except Exception as e:
            for data in _unread(content):
                yield data
            raise self._broken(e, "broke off the stream") from None

    def close(self) -> None:
        self._resp.close()

    def _broken(self, e: Exception, what: str) -> UpstreamError:
        if isinstance(e, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
            return UpstreamError(
                504, f"Upstream {self.host} stalled: no data for {self._timeout:g} s.", "upstream_timeout"
            )
        return UpstreamError(502, f"Upstream {self.host} {what}: {_reason(e)}.", "upstream_error")


class UpstreamClient:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                # sock_read: the longest silence between two reads, so long streams never time out.
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=min(10.0, self.timeout), sock_read=self.timeout
                ),
                connector=aiohttp.TCPConnector(limit=512, keepalive_timeout=30, ttl_dns_cache=300),
                # Never route through HTTP(S)_PROXY: a shell pointed at this proxy would loop back into it.
                trust_env=False,
                auto_decompress=True,
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def open(self, call: UpstreamCall) -> UpstreamResponse:
        """Send and wait for the response head."""
        host = call.url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
        try:
            resp = await self._client().request(
                call.method, call.url, headers=call.headers, data=call.body, allow_redirects=False
            )
        except aiohttp.ClientConnectorError as e:
            raise UpstreamError(
                502, f"Cannot connect to upstream {host}: {_reason(e)}.", "upstream_unreachable"
            ) from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamError(
                504, f"Upstream {host} sent no response within {self.timeout:g} s.", "upstream_timeout"
            ) from None
        except (aiohttp.ClientError, OSError) as e:
            raise UpstreamError(
                502, f"Upstream {host} failed before answering: {_reason(e)}.", "upstream_error"
            ) from None
        return UpstreamResponse(resp, self.timeout)

    async def get_json(
        self, url: str, headers: Mapping[str, str], params: Mapping[str, str] | None = None
    ) -> Any:
        """A small GET for start-up work (model discovery); non-2xx and bad JSON raise UpstreamError."""
        call = UpstreamCall("GET", url, dict(headers), b"", False)
        if params:
            call.url += ("&" if "?" in url else "?") + urlencode(params)
        resp = await self.open(call)
        try:
            body = await resp.read()
        finally:
            resp.close()
        if not 200 <= resp.status < 300:
            raise UpstreamError(resp.status, f"HTTP {resp.status}", "upstream_status")
        try:
            return json.loads(body)
        except ValueError:
            raise UpstreamError(502, "answer is not JSON", "upstream_bad_response") from None


def _unread(content: Any) -> list[bytes]:
    """Bytes that arrived before the connection broke.

    aiohttp raises a transport error before handing out what it had already buffered; those bytes
    reached the proxy and must reach the client too (its stream then ends with our error event).
    """
    buf = getattr(content, "_buffer", None)
    if not buf:
        return []
    chunks = [bytes(c) for c in buf]
    chunks[0] = chunks[0][getattr(content, "_buffer_offset", 0) :]
    buf.clear()
    return [c for c in chunks if c]


def _reason(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text.splitlines()[0][:200]

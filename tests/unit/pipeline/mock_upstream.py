"""An in-process provider for pipeline tests, in the style of httpx's MockTransport: a handler maps each
outgoing call to an answer (or an UpstreamError), and every call is kept for assertions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from multidict import CIMultiDict, CIMultiDictProxy

from addons.upstream import UpstreamCall, UpstreamError


@dataclass
class MockAnswer:
    status: int
    body: bytes | list[bytes] = b""
    headers: Mapping[str, str] = field(default_factory=lambda: {"content-type": "application/json"})
    fail_after: UpstreamError | None = None  # raised after the body's chunks, as a broken stream
    host: str = "provider.test"
    closed: bool = False
    cut: bool = False  # the connection closes after the body's chunks: UpstreamResponse's own error

    def __post_init__(self) -> None:
        self.headers = CIMultiDictProxy(CIMultiDict(self.headers))

    async def read(self) -> bytes:
        if error := self._failure("broke off its answer"):
            raise error
        return self.body if isinstance(self.body, bytes) else b"".join(self.body)

    async def chunks(self) -> AsyncIterator[bytes]:
        for c in [self.body] if isinstance(self.body, bytes) else self.body:
            yield c
        if error := self._failure("broke off the stream"):
            raise error

    def _failure(self, what: str) -> UpstreamError | None:
        if self.cut:
            return UpstreamError(502, f"Upstream {self.host} {what}: Connection lost.", "upstream_error")
        return self.fail_after

    def close(self) -> None:
        self.closed = True


def json_answer(status: int, obj: Any, **headers: str) -> MockAnswer:
    return MockAnswer(status, json.dumps(obj).encode(), {"content-type": "application/json", **headers})


def sse_answer(events: list[bytes], fail_after: UpstreamError | None = None) -> MockAnswer:
    return MockAnswer(200, events, {"content-type": "text/event-stream"}, fail_after)


Handler = Callable[[UpstreamCall], "MockAnswer | UpstreamError"]


class MockUpstream:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls: list[UpstreamCall] = []

    async def open(self, call: UpstreamCall) -> MockAnswer:
        self.calls.append(call)
        answer = self.handler(call)
        if isinstance(answer, UpstreamError):
            raise answer
        return answer

    async def get_json(
        self, url: str, headers: Mapping[str, str], params: Mapping[str, str] | None = None
    ) -> Any:
        # As UpstreamClient.get_json: params in the URL, non-2xx and bad JSON as UpstreamError.
        query = ("&" if "?" in url else "?") + urlencode(params) if params else ""
        answer = await self.open(UpstreamCall("GET", url + query, dict(headers), b"", False))
        body = await answer.read()
        if not 200 <= answer.status < 300:
            raise UpstreamError(answer.status, f"HTTP {answer.status}", "upstream_status")
        try:
            return json.loads(body)
        except ValueError:
            raise UpstreamError(502, "answer is not JSON", "upstream_bad_response") from None

    async def aclose(self) -> None:
        pass

    def keys_used(self) -> list[str]:
        """The key each call carried, in order (as the header value the backend put it in)."""
        return [c.headers.get("authorization") or c.headers.get("x-goog-api-key", "") for c in self.calls]

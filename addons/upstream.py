"""The proxy's HTTP client towards providers: one pooled httpx client, errors as clear proxy errors."""

from __future__ import annotations

import logging

import httpx

from addons.backends.base import UpstreamCall

# mitmproxy runs the root logger at DEBUG: httpx/httpcore would emit ~11 records per request, each
# formatted and passed through every addon (measured: ~20% of the proxy's CPU per request).
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class UpstreamError(Exception):
    """The provider could not be reached or did not answer in time. Messages never contain keys."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


class UpstreamClient:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)),
                # httpcore rescans every pooled connection per request (encode/httpcore#1035): keep
                # the idle pool small and short-lived so a past burst does not tax later requests.
                limits=httpx.Limits(max_connections=512, max_keepalive_connections=32, keepalive_expiry=5),
                # Never route through HTTP(S)_PROXY: a shell pointed at this proxy would loop back into it.
                trust_env=False,
                follow_redirects=False,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def open(self, call: UpstreamCall) -> httpx.Response:
        """Send and wait for the response head; the caller reads (or streams) and closes the body."""
        req = self.client.build_request(call.method, call.url, headers=call.headers, content=call.body)
        host = req.url.host
        try:
            return await self.client.send(req, stream=True)
        except httpx.ConnectTimeout:
            raise UpstreamError(
                504, f"Timed out connecting to upstream {host}.", "upstream_timeout"
            ) from None
        except httpx.TimeoutException:
            raise UpstreamError(
                504, f"Upstream {host} sent no response within {self.timeout:g} s.", "upstream_timeout"
            ) from None
        except httpx.ConnectError as e:
            raise UpstreamError(
                502, f"Cannot connect to upstream {host}: {_reason(e)}.", "upstream_unreachable"
            ) from None
        except httpx.HTTPError as e:
            raise UpstreamError(
                502, f"Upstream {host} failed before answering: {_reason(e)}.", "upstream_error"
            ) from None


def _reason(e: Exception) -> str:
    text = str(e) or type(e).__name__
    return text.splitlines()[0][:200]

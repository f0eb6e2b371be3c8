"""Remote media whose type its URL does not tell (avatars, CDN links, signed URLs): fetched by the proxy
and inlined as data: URLs before the Gemini attempts, within a size and time budget.

Why the proxy fetches rather than leaving it to Gemini: Gemini's fileData needs a mimeType, which only
the answer (its Content-Type, or its first bytes) tells, and only newer Gemini models fetch external URLs
at all. When the proxy's fetch fails (a refused address, an error status, too big, too slow, not a media
type), the URL goes to Gemini as before, with the type the translator guesses, and Gemini decides.

Only http and https, and only global addresses: never loopback, link-local, private, shared or reserved
ones (addons/security/destinations.py's rules and more). A name is checked on every address it resolves
to, in the lookup the connection itself uses, so it cannot be rebound in between; redirects are followed
by hand, each hop checked again. URLs are logged without their query (signed URLs carry credentials).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from addons.netaddr import local_name
from addons.security.destinations import forbidden_ip
from translators.gemini.media import GEMINI_MIME_TYPES, remote_type_unknown, sniff_mime

log = logging.getLogger(__name__)

MAX_BYTES = 20 * 1024 * 1024  # all media of one request together: Gemini's documented inline-data size
TIMEOUT = 10.0  # seconds for all fetches of one request together
MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HEADERS = {"accept": "image/*,application/pdf,audio/*,video/*,text/*;q=0.5", "user-agent": "llm-intercept"}
_GENERIC = frozenset({"", "application/octet-stream", "binary/octet-stream"})


class FetchFailed(Exception):
    """Why one URL was not inlined (logged; the URL then goes to Gemini)."""


@dataclass(frozen=True, slots=True)
class MediaFetcher:
    max_bytes: int = MAX_BYTES
    timeout: float = TIMEOUT
    allow_loopback: bool = False  # for tests serving media from 127.0.0.1; never in production

    async def inline(self, request: dict[str, Any]) -> dict[str, Any]:
        """`request` with each untyped remote media URL the fetch could read replaced by a data: URL;
        `request` itself is left as it was (history keeps the URLs, not megabytes of base64)."""
        wanted = _untyped_urls(request)
        if not wanted:
            return request
        fetched = await self._fetch_all(wanted)
        return _with_data_urls(request, fetched) if fetched else request

    async def _fetch_all(self, wanted: dict[str, bool]) -> dict[str, str]:
        loop = asyncio.get_running_loop()
        deadline, budget, out = loop.time() + self.timeout, self.max_bytes, {}
        connector = aiohttp.TCPConnector(resolver=_GuardedResolver(self.allow_loopback), use_dns_cache=False)
        async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
            for url, image in wanted.items():
                left = deadline - loop.time()
                try:
                    if left <= 0 or budget <= 0:
                        raise FetchFailed("the request's time or size budget for media is spent")
                    async with asyncio.timeout(left):
                        data, mime = await self._fetch(session, url, budget)
                    if mime not in GEMINI_MIME_TYPES or (image and not mime.startswith("image/")):
                        raise FetchFailed(f"{mime or 'no media type'} is not media Gemini reads here")
                except (FetchFailed, TimeoutError, aiohttp.ClientError, OSError, ValueError) as e:
                    log.info(
                        "media %s not inlined, Gemini gets the URL: %s", _shown(url), str(e) or "timeout"
                    )
                    continue
                budget -= len(data)
                out[url] = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        return out

    async def _fetch(self, session: aiohttp.ClientSession, url: str, limit: int) -> tuple[bytes, str]:
        for _ in range(MAX_REDIRECTS + 1):
            self._check(url)
            async with session.get(url, headers=_HEADERS, allow_redirects=False) as resp:
                location = resp.headers.get("location")
                if resp.status in _REDIRECTS and location:
                    url = urljoin(url, location)
                    continue
                if resp.status != 200:
                    raise FetchFailed(f"HTTP {resp.status}")
                if (resp.content_length or 0) > limit:
                    raise FetchFailed(f"{resp.content_length} bytes is more than the {limit} left")
                data = await _read_at_most(resp, limit)
                mime = resp.content_type.lower()
                return data, (sniff_mime(data) or mime) if mime in _GENERIC else mime
        raise FetchFailed(f"more than {MAX_REDIRECTS} redirects")

    def _check(self, url: str) -> None:
        """Scheme and literal hosts; names are checked by the resolver."""
        split = urlsplit(url)
        host = split.hostname or ""
        if split.scheme.lower() not in ("http", "https") or not host:
            raise FetchFailed("only http and https URLs with a host are fetched")
        if local_name(host):
            raise FetchFailed(f"{host} is this machine")
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return
        if not allowed_ip(ip, self.allow_loopback):
            raise FetchFailed(f"{host} is not a public address")


def allowed_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_loopback: bool = False) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if allow_loopback and ip.is_loopback:
        return True
    return ip.is_global and not ip.is_multicast and not forbidden_ip(ip)


class _GuardedResolver(AbstractResolver):
    """The connection's own lookup, refusing a name if any of its addresses is not allowed."""

    def __init__(self, allow_loopback: bool) -> None:
        self._inner = ThreadedResolver()
        self._allow_loopback = allow_loopback

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        addresses = [ipaddress.ip_address(str(r["host"]).split("%", 1)[0]) for r in found]
        if not addresses or not all(allowed_ip(ip, self._allow_loopback) for ip in addresses):
            raise OSError(f"{host} resolves to an address the proxy does not fetch from")
        return found

    async def close(self) -> None:
        await self._inner.close()


async def _read_at_most(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    data = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise FetchFailed(f"more than the {limit} bytes left")
    return bytes(data)


def _shown(url: str) -> str:
    split = urlsplit(url)
    return f"{split.scheme}://{split.netloc}{split.path}"[:200]


def _media_url(part: Any) -> tuple[str, str, bool] | None:
    """(URL, filename, is an image) of a content part that points at remote media, else None."""
    if not isinstance(part, dict):
        return None
    if part.get("type") == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        return (url, "", True) if isinstance(url, str) else None
    file = part.get("file")
    if part.get("type") != "file" or not isinstance(file, dict):
        return None
    url = file.get("file_data") if isinstance(file.get("file_data"), str) else file.get("file_id")
    return (url, str(file.get("filename") or ""), False) if isinstance(url, str) else None


def _media_parts(request: dict[str, Any]) -> list[tuple[int, int, str, str, bool]]:
    """(message index, part index, URL, filename, image) of every media part in user and tool messages."""
    found = []
    messages = request.get("messages")
    for i, msg in enumerate(messages if isinstance(messages, list) else []):
        content = (
            msg.get("content") if isinstance(msg, dict) and msg.get("role") in ("user", "tool") else None
        )
        for j, part in enumerate(content if isinstance(content, list) else []):
            ref = _media_url(part)
            if ref is not None:
                found.append((i, j, *ref))
    return found


def _untyped_urls(request: dict[str, Any]) -> dict[str, bool]:
    """URL -> whether some part needs it to be an image, for the URLs worth fetching."""
    wanted: dict[str, bool] = {}
    for _, _, url, filename, image in _media_parts(request):
        if remote_type_unknown(url, filename):
            wanted[url] = wanted.get(url, False) or image
    return wanted


def _with_data_urls(request: dict[str, Any], fetched: dict[str, str]) -> dict[str, Any]:
    """A copy of `request` whose media parts point at the fetched data URLs (only what changes is copied)."""
    messages = list(request["messages"])
    for i, j, url, _, image in _media_parts(request):
        if url not in fetched:
            continue
        msg = messages[i] = dict(messages[i])
        content = msg["content"] = list(msg["content"])
        part = content[j]
        if image:
            old = part["image_url"] if isinstance(part["image_url"], dict) else {}
            content[j] = {**part, "image_url": {**old, "url": fetched[url]}}
        else:
            file = {k: v for k, v in part["file"].items() if k != "file_id"}
            content[j] = {**part, "file": {**file, "file_data": fetched[url]}}
    return {**request, "messages": messages}

"""The runtime configuration and routes shared through Redis: one JSON document and a change message.

`get()` returns the local copy and never waits on Redis. A `put` replaces the local copy, writes the
document and publishes the change; every other instance re-reads the document when the message arrives
(well within 100 ms on a LAN). While Redis is away a put stays local and is pushed on reconnection.
"""

from __future__ import annotations

import logging
from typing import Any

from addons.stores.base import RUNTIME_SETTINGS, Route, RuntimeConfig
from addons.stores.redis_link import Down, RedisLink
from translators import json_codec

log = logging.getLogger(__name__)


def encode(config: RuntimeConfig) -> bytes:
    """Every value, not only those differing from start-up: instances may start with different ones."""
    doc: dict[str, Any] = {name: getattr(config, attr) for attr, name in RUNTIME_SETTINGS.items()}
    doc["routes"] = {name: r.to_json() for name, r in config.routes.items()}
    return json_codec.dumps(doc)


def decode(data: bytes, base: dict[str, Any]) -> RuntimeConfig:
    """ValueError for a document this version cannot read."""
    try:
        doc = json_codec.loads(data)
        values = {attr: doc[name] for attr, name in RUNTIME_SETTINGS.items()}
        routes = {
            name: Route(name, r["policy"], [tuple(e.split(":", 1)) for e in r["elements"]])  # type: ignore[misc]
            for name, r in doc["routes"].items()
        }
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"malformed configuration document ({e!r})") from None
    if not all(isinstance(values[a], bool) for a in ("interactive", "redact")):
        raise ValueError("malformed configuration document (interactive, redact)")
    return RuntimeConfig(**values, routes=routes, base=dict(base))


class RedisConfig:
    """ConfigStore over the document `<namespace>:config`."""

    def __init__(self, link: RedisLink, config: RuntimeConfig) -> None:
        self.link = link
        self.live = config
        self._version = 0  # local puts so far: a read that raced one is not applied
        self._unsent = False  # a put Redis has not seen yet
        link.on_change("config", lambda _: self._reload())
        link.on_resync(self._resync)
        link.on_refresh(self._reload)

    async def get(self) -> RuntimeConfig:
        return self.live

    async def put(self, config: RuntimeConfig) -> None:
        self.live = config
        self._version += 1
        try:
            await self.link.call(lambda r: r.set(self._key, encode(config)))
        except Down:
            self._unsent = True
            return
        self._unsent = False
        await self.link.publish("config")

    async def flush(self) -> None:
        """Nothing to wait for: a put has reached Redis when it returns, or waits for the reconnection."""

    def rebase(self, config: RuntimeConfig) -> None:
        """After an option change: `config` has the new start-up values and keeps what commands changed."""
        config.carry(self.live)
        self.live = config

    @property
    def _key(self) -> str:
        return self.link.key("config")

    async def _reload(self) -> None:
        version = self._version
        data = await self.link.raw(lambda r: r.get(self._key))
        if data is None or version != self._version:
            return
        try:
            shared = decode(data, self.live.base)
        except ValueError as e:
            log.warning("redis: %s; keeping the configuration this instance has", e)
            return
        self.live = shared

    async def _resync(self) -> None:
        """What changed here while Redis was away wins; else the shared document. Only where there is none
        does this instance's configuration seed it (NX: an instance resynchronising at the same moment
        with changes of its own must not be overwritten)."""
        version, unsent = self._version, self._unsent
        if await self.link.raw(lambda r: r.set(self._key, encode(self.live), nx=not unsent)):
            self._unsent = self._unsent and version != self._version  # a put meanwhile is still unsent
            await self.link.raw(lambda r: r.publish(self.link.channel, self.link.message("config")))
        else:
            await self._reload()

"""The Redis stores of a team deployment, built together on one connection pool (one `RedisLink`)."""

from __future__ import annotations

from dataclasses import dataclass

from addons.stores.base import RuntimeConfig, Stores
from addons.stores.redis_blobs import RedisResponses, RedisSignatures
from addons.stores.redis_config import RedisConfig
from addons.stores.redis_link import RedisLink, refusal
from addons.stores.redis_state import RedisCooldowns, RedisSessions


@dataclass(frozen=True, slots=True)
class RedisStores:
    link: RedisLink
    sessions: RedisSessions
    cooldowns: RedisCooldowns
    config: RedisConfig
    signatures: RedisSignatures
    responses: RedisResponses


def build(
    url: str, namespace: str, idle_ttl: float, runtime: RuntimeConfig, previous: Stores | None
) -> RedisStores:
    """The stores on `url` under `namespace`. After an option change (`previous`) on the same server and
    namespace, the same stores: their local views and the link carry over, and the configuration keeps
    what commands changed."""
    old = previous.config if previous is not None else None
    if isinstance(old, RedisConfig) and (old.link.url, old.link.namespace) == (url, namespace):
        assert previous is not None
        sessions, cooldowns = previous.sessions, previous.cooldowns
        signatures, responses = previous.signatures, previous.responses
        assert isinstance(sessions, RedisSessions) and isinstance(cooldowns, RedisCooldowns)
        assert isinstance(signatures, RedisSignatures) and isinstance(responses, RedisResponses)
        sessions.idle_ttl = idle_ttl
        old.rebase(runtime)
        return RedisStores(old.link, sessions, cooldowns, old, signatures, responses)
    link = RedisLink(url, namespace)
    return RedisStores(
        link,
        RedisSessions(link, idle_ttl),
        RedisCooldowns(link),
        RedisConfig(link, runtime),
        RedisSignatures(link),
        RedisResponses(link),
    )


def link_of(stores: Stores) -> RedisLink | None:
    """The Redis link behind these stores, if they are the team ones."""
    return stores.config.link if isinstance(stores.config, RedisConfig) else None


class RedisShared:
    """The Redis link as status and start-up see it."""

    name = "Redis"

    def __init__(self, link: RedisLink) -> None:
        self.link = link

    @property
    def degraded(self) -> bool:
        return self.link.degraded

    def detail(self) -> str:
        return (
            "DEGRADED: Redis does not answer, this instance serves its own state" if self.degraded else "ok"
        )

    async def check(self) -> str | None:
        return await refusal(self.link.url)

    async def synchronise(self) -> None:
        await self.link.synced()

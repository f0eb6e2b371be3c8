"""Composition root: settings in, the pipeline's `Core` out. The only place stores, backends and the
upstream client are chosen and constructed."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from addons.backends.prices import DEFAULT_PRICES
from addons.backends.registry import build_backends
from addons.frontends import anthropic, completions, openai_chat
from addons.frontends.base import Frontend
from addons.frontends.responses import ResponsesFrontend
from addons.metrics.registry import Metrics
from addons.pipeline.core import Core
from addons.pipeline.record import Meter
from addons.routing.catalog import ModelCatalog
from addons.routing.models import ModelMap
from addons.routing.planner import Router
from addons.routing.routes import MAX_ROUTES, parse_routes
from addons.security import sealing_key
from addons.security.redaction import MIN_SECRET_LENGTH, Redactor
from addons.settings import Settings, SettingsError
from addons.stores.base import (
    BudgetStore,
    HistorySink,
    ResponseStore,
    RuntimeConfig,
    SharedState,
    SignatureStore,
    Stores,
    UsageStore,
)
from addons.stores.budget_memory import MemoryBudgets, history_seed
from addons.stores.jsonfile import PERSISTED, JsonConfigStore, StateFile
from addons.stores.memory import MemoryCooldowns, MemorySessions
from addons.stores.responses_memory import MemoryResponses
from addons.stores.signatures_memory import MemorySignatures
from addons.stores.sqlite import SqliteHistory, default_path
from addons.stores.sqlite_responses import SqliteResponses
from addons.stores.sqlite_signatures import SqliteSignatures
from addons.stores.sqlite_usage import SqliteUsage
from addons.stores.usage import MemoryUsage
from addons.upstream import Upstream, UpstreamClient
from addons.usage.pricing import PriceTable
from translators.responses import Sealer

log = logging.getLogger(__name__)


def build(settings: Settings, previous: Core | None = None, upstream: Upstream | None = None) -> Core:
    """`previous`: the core this one replaces after an option change. Its live sessions, cooldowns, key
    rotation, what commands changed and the metrics carry over: changing one option must not reset them.
    `upstream`: the provider HTTP client; in-process tests pass a fake."""
    backends = build_backends(settings)
    redactor = _redactor(settings)
    state_file = StateFile(settings.state_file)
    runtime = _load_runtime(settings, state_file, tuple(backends))
    hist = settings.history_db
    path = None if hist == "off" else default_path() if hist == "auto" else Path(hist)
    stores = _stores(settings, previous.stores if previous else None, runtime, state_file, redactor, path)
    stores.usage = _usage(settings, previous.stores if previous else None, stores.history)
    stores.budgets = _budgets(settings, previous.stores if previous else None, stores)
    return Core(
        settings=settings,
        backends=backends,
        upstream=upstream or UpstreamClient(settings.proxy_timeout),
        catalog=ModelCatalog(tuple(backends)),
        router=Router({b: settings.keyring(b) for b in backends}, stores.cooldowns),
        redactor=redactor,
        stores=stores,
        model_map=_model_map(settings),
        frontends=_frontends(_sealer(settings, path), stores.responses, redactor),
        metrics=previous.metrics if previous else Metrics(),
        meter=Meter(PriceTable(DEFAULT_PRICES, settings.prices), stores.usage),
    )


def _usage(settings: Settings, previous: Stores | None, history: HistorySink) -> UsageStore:
    """Usage lives with history: in PostgreSQL, in the history file, or (history off) in memory, which an
    option change keeps."""
    if settings.database_url:
        from addons.stores.pg_history import PgHistory
        from addons.stores.pg_usage import PgUsage

        assert isinstance(history, PgHistory)  # database_url is start-up only
        return PgUsage(history)
    if isinstance(history, SqliteHistory) and history.enabled:
        return SqliteUsage(history)
    old = previous.usage if previous is not None else None
    return old if isinstance(old, MemoryUsage) else MemoryUsage()


def _stores(
    settings: Settings,
    previous: Stores | None,
    runtime: RuntimeConfig,
    state_file: StateFile,
    redactor: Redactor,
    path: Path | None,
) -> Stores:
    """Embedded by default; Redis (redis_url) for the shared state, PostgreSQL (database_url) for history
    and kept responses. Kept responses: PostgreSQL, else Redis, else with history, else in memory."""
    servers: list[SharedState] = []
    # The team stores import their clients (the optional `team` extra) only when configured.
    if settings.database_url:
        from addons.stores import pg

        url, namespace, days = settings.database_url, settings.llm_namespace, settings.history_max_days
        history, shared = pg.build(url, namespace, scrub=redactor.redact, max_days=days)
        servers.append(pg.PgShared(url, history))
    else:
        max_bytes = int(settings.history_max_mb * 1024 * 1024)
        history = SqliteHistory(
            path, redactor.redact, max_days=settings.history_max_days, max_bytes=max_bytes
        )
        shared = None
    if settings.redis_url:
        from addons.stores import redis_team

        team = redis_team.build(
            settings.redis_url, settings.llm_namespace, settings.session_idle_ttl, runtime, previous
        )
        servers.insert(0, redis_team.RedisShared(team.link))
        return Stores(
            team.sessions, team.cooldowns, team.config, history, shared or team.responses, team.signatures,
            tuple(servers),
        )  # fmt: skip
    stores = _embedded(settings, previous, runtime, state_file, history, path)
    return dataclasses.replace(stores, responses=shared or stores.responses, shared=tuple(servers))


def _budgets(settings: Settings, previous: Stores | None, stores: Stores) -> BudgetStore:
    """Redis with the team stores, else memory; both begin a ledger from the usage history. The store an
    option change replaces is kept: its ledgers and calls in flight are live state."""
    seed = history_seed(stores.usage)
    old = previous.budgets if previous is not None else None
    if settings.redis_url:
        from addons.stores import redis_team
        from addons.stores.redis_budget import RedisBudgets

        link = redis_team.link_of(stores)
        assert link is not None
        if not (isinstance(old, RedisBudgets) and old.link is link):
            return RedisBudgets(link, settings.session_idle_ttl, seed)
        old.idle_ttl, old.seed, old.local.seed = settings.session_idle_ttl, seed, seed
        return old
    if not isinstance(old, MemoryBudgets):
        return MemoryBudgets(seed)
    old.seed = seed
    return old


def _embedded(
    settings: Settings,
    previous: Stores | None,
    runtime: RuntimeConfig,
    state_file: StateFile,
    history: HistorySink,
    path: Path | None,
) -> Stores:
    """One proxy's stores: memory, the state file, the history file. What lives in memory survives an
    option change (`previous`): sessions, cooldowns, key rotation, kept responses and signatures."""
    if previous is None:
        sessions, cooldowns = MemorySessions(idle_ttl=settings.session_idle_ttl), MemoryCooldowns()
    else:
        # The same stores: rotation positions are kept per key ring, so new keys start a fresh rotation.
        sessions, cooldowns = previous.sessions, previous.cooldowns
        sessions.idle_ttl = settings.session_idle_ttl
        live = previous.config
        assert isinstance(live, JsonConfigStore)  # redis_url is start-up only
        runtime.carry(live.live)
    responses: ResponseStore
    signatures: SignatureStore
    if isinstance(history, SqliteHistory) and path is not None:
        responses, signatures = SqliteResponses(history), SqliteSignatures(history)
    else:
        old = (previous.responses, previous.signatures) if previous else (None, None)
        responses = old[0] if isinstance(old[0], MemoryResponses) else MemoryResponses()
        signatures = old[1] if isinstance(old[1], MemorySignatures) else MemorySignatures()
    return Stores(sessions, cooldowns, JsonConfigStore(state_file, runtime), history, responses, signatures)


def _sealer(settings: Settings, history: Path | None) -> Sealer:
    """The sealing key lives with what the proxy keeps: next to the state file, else next to the history
    database. A proxy that keeps nothing on disk keeps no key either: one for this run."""
    folder = Path(settings.state_file).parent if settings.state_file else history.parent if history else None
    if folder is None:
        return Sealer(sealing_key.for_this_run())
    return Sealer(sealing_key.load_or_create(folder / "responses.key"))


def _frontends(sealer: Sealer, responses: ResponseStore, redactor: Redactor) -> dict[str, Frontend]:
    chosen = (
        openai_chat.FRONTEND,
        anthropic.FRONTEND,
        ResponsesFrontend(responses, sealer, redactor),
        completions.FRONTEND,
    )
    return {fe.name: fe for fe in chosen}


def _model_map(settings: Settings) -> ModelMap:
    try:
        return ModelMap.parse(settings.model_map)
    except ValueError as e:
        raise SettingsError(str(e)) from None


def _redactor(settings: Settings) -> Redactor:
    secrets = settings.all_secrets()
    for name, secret in secrets:
        if len(secret) < MIN_SECRET_LENGTH:
            log.warning("%s is shorter than %d characters: not used for redaction", name, MIN_SECRET_LENGTH)
    return Redactor(s for _, s in secrets)


def _load_runtime(s: Settings, state_file: StateFile, backends: tuple[str, ...]) -> RuntimeConfig:
    """Start-up values, overridden by what commands saved, except options given with --set."""
    base = {
        "default_backend": s.llm_backend,
        "interactive_mode": s.interactive_mode,
        "redact_api_keys_in_prompts": s.redact_api_keys_in_prompts,
    }
    saved, problems = state_file.load(backends)
    for p in problems:
        # Warning, not error: mitmdump exits on any error logged during start-up.
        log.warning("state: %s", p)
    current = dict(base)
    for name, value in saved.items():
        setting = PERSISTED.get(name)
        if setting and not s.sources.get(setting, "").startswith("--set"):
            current[name] = value
    routes, problems = parse_routes(s.routes, backends)
    if problems:
        raise SettingsError(f"mitm_config.yaml: {'; '.join(problems)}")
    saved_routes, problems = parse_routes(saved.get("routes") or {}, backends)
    for p in problems:
        log.warning("state: %s; skipped", p)
    # Saved routes win by name; the total stays within MAX_ROUTES.
    routes = {**routes, **saved_routes}
    for name in list(routes)[MAX_ROUTES:]:
        log.warning("state: more than %d routes; route %s skipped", MAX_ROUTES, name)
        del routes[name]
    return RuntimeConfig(
        current["default_backend"],
        current["interactive_mode"],
        current["redact_api_keys_in_prompts"],
        routes=routes,
        base=base,
    )

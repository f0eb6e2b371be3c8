"""Composition root: settings in, the pipeline's `Core` out. The only place stores, backends and the
upstream client are chosen and constructed."""

from __future__ import annotations

import logging
from pathlib import Path

from addons.backends.registry import build_backends
from addons.catalog import ModelCatalog
from addons.history import HistoryStore, default_path
from addons.pipeline.core import Core
from addons.redaction import MIN_SECRET_LENGTH, Redactor
from addons.routing import Cooldowns, Route, Router, parse_route
from addons.sessions import SessionStore
from addons.settings import Settings, SettingsError
from addons.state import PERSISTED, RuntimeConfig, StateFile
from addons.upstream import Upstream, UpstreamClient

log = logging.getLogger(__name__)


def build(settings: Settings, upstream: Upstream | None = None) -> Core:
    """`upstream`: the provider HTTP client; in-process tests pass a fake."""
    backends = build_backends(settings)
    redactor = _redactor(settings)
    state_file = StateFile(settings.state_file)
    hist = settings.history_db
    path = None if hist == "off" else default_path() if hist == "auto" else Path(hist)
    return Core(
        settings=settings,
        backends=backends,
        upstream=upstream or UpstreamClient(settings.proxy_timeout),
        catalog=ModelCatalog(tuple(backends)),
        router=Router({b: settings.keyring(b) for b in backends}, Cooldowns()),
        sessions=SessionStore(idle_ttl=settings.session_idle_ttl),
        redactor=redactor,
        runtime=_load_runtime(settings, state_file, tuple(backends)),
        state_file=state_file,
        history=HistoryStore(path, scrub=redactor.redact),
    )


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
    routes: dict[str, Route] = {}
    for name, data in s.routes.items():
        try:
            routes[name] = parse_route(str(name), data, backends)
        except ValueError as e:
            raise SettingsError(f"mitm_config.yaml: {e}") from None
    for name, data in (saved.get("routes") or {}).items():
        try:
            routes[name] = parse_route(str(name), data, backends)
        except ValueError as e:
            log.warning("state: %s; skipped", e)
    return RuntimeConfig(
        current["default_backend"],
        current["interactive_mode"],
        current["redact_api_keys_in_prompts"],
        routes=routes,
        base=base,
    )

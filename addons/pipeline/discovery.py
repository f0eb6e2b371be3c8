"""Start-up model discovery: each backend lists its models, concurrently; a failure marks it unavailable."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from addons.backends.registry import key_env
from addons.pipeline.core import Core
from addons.upstream import UpstreamError

log = logging.getLogger(__name__)


async def discover(core: Core) -> None:
    await asyncio.gather(*(_discover_one(core, name) for name in core.backends))
    core.catalog.mark_ready()
    await _switch_off_model_named_routes(core)


async def _switch_off_model_named_routes(core: Core) -> None:
    """A route named like a model captures every request for that model, other clients' included. Commands
    refuse such names; one from mitm_config.yaml or a state file written before that rule is switched off
    here, loudly (and so dropped from the state file at its next save)."""
    config = await core.stores.config.get()
    listed = {m.casefold(): b for b in core.backends for m in core.catalog.entry(b).models}
    clashes = {name: listed[name.casefold()] for name in config.routes if name.casefold() in listed}
    if not clashes:
        return
    for name, backend in clashes.items():
        log.warning("route %r has the name of a model %s lists: route switched off", name, backend)
    routes = {name: r for name, r in config.routes.items() if name not in clashes}
    await core.stores.config.put(dataclasses.replace(config, routes=routes))


async def _discover_one(core: Core, name: str) -> None:
    backend = core.backends[name]
    ring = core.settings.keyring(name)
    timeout = core.settings.discovery_timeout
    if not ring:
        env = key_env(name)
        core.catalog.set_unavailable(name, f"no API key (set {env} or {env}_1..{env}_20)")
        log.warning(
            "%s: no API key configured (set %s or %s_1..%s_20); backend unavailable", name, env, env, env
        )
        return
    # One bad key (revoked, out of quota) must not hide a backend the other keys can reach.
    failures = []
    for key_name in ring.names:
        try:
            models = await asyncio.wait_for(
                backend.discover_models(core.upstream, ring.secret(key_name)), timeout
            )
        except Exception as e:
            failures.append(f"{key_name}: {core.redactor.redact_cut(_describe(e, timeout))}")
            continue
        core.catalog.set_models(name, models)
        log.info("%s: %d models, %d key(s)", name, len(models), len(ring))
        if failures:
            log.warning("%s: discovery failed with %s", name, "; ".join(failures))
        return
    reason = "; ".join(failures)
    core.catalog.set_unavailable(name, reason)
    log.error("%s: model discovery failed (%s); backend marked unavailable", name, reason)


def _describe(e: Exception, timeout: float) -> str:
    if isinstance(e, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(e, UpstreamError):
        return e.message
    return (str(e) or type(e).__name__).splitlines()[0][:200]

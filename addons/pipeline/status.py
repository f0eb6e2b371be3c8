"""The texts the proxy shows about itself: banner, `!/status`, `llm.status`, sessions and routes."""

from __future__ import annotations

import math

from addons.guards import call as guards
from addons.pipeline import budget
from addons.pipeline.core import Core
from addons.stores.base import RuntimeConfig, Session
from addons.usage import report

VERSION = "0.1.0"


def _backend_line(core: Core, name: str) -> str:
    e = core.catalog.entry(name)
    keys = core.router.count(name)
    if e.status == "ok":
        return f"{name}: {keys} key(s), {len(e.models)} models"
    return f"{name}: {keys} key(s), unavailable ({e.reason or 'discovery pending'})"


def banner(core: Core, session: Session, runtime: RuntimeConfig) -> str:
    lines = [
        f"llm-intercept {VERSION} · session {session.id}",
        f"default backend: {runtime.default_backend}",
        *(_backend_line(core, b) for b in core.backends),
        f"type {core.settings.command_prefix}help for commands",
    ]
    return "\n".join(lines)


async def usage_text(core: Core, session: Session) -> str:
    """`!/usage`: tokens and cost of the session, its project, and today (UTC) across every session; what
    is left of the budgets that apply."""
    text = await report.usage_text(core.stores.usage, session.id, session.project)
    return "\n".join([text, *await budget.status_lines(core, session)])


async def status_text(core: Core, session: Session | None = None) -> str:
    rt = await core.stores.config.get()
    lines = [f"llm-intercept {VERSION} status", f"default backend: {rt.default_backend}"]
    for b in core.backends:
        names = ", ".join(core.settings.keyring(b).names) or "none"
        lines.append(f"{_backend_line(core, b)}; keys: {names}")
    cooling = await core.stores.cooldowns.active()
    lines.append("cooldowns: " + ("none" if not cooling else ""))
    for c in cooling:
        when = "retired" if c.left == math.inf else f"{math.ceil(c.left)} s left"
        lines.append(f"  {c.backend}:{c.model} {c.key}: {when} ({c.reason})")
    lines.append("failover routes: " + ("none" if not rt.routes else ""))
    lines += [f"  {r.describe()}" for r in rt.routes.values()]
    sessions = await core.stores.sessions.count()
    lines.append(f"redaction: {'on' if rt.redact else 'off'}; sessions: {sessions}")
    lines.append(guards.status_line(core.settings, session))
    lines += [f"shared state ({s.name}): {s.detail()}" for s in core.stores.shared]
    if session is not None:
        lines.append(f"this session: {describe_session(rt, session)}")
        lines += await budget.status_lines(core, session)
    return "\n".join(lines)


def describe_session(rt: RuntimeConfig, s: Session) -> str:
    interactive = rt.interactive if s.interactive is None else s.interactive
    return (
        f"{s.id}: model={s.model or '(request)'}, backend={s.backend or rt.default_backend}, "
        f"project={s.project or '-'}, interactive={'on' if interactive else 'off'}"
    )


async def sessions_text(core: Core) -> str:
    sessions = await core.stores.sessions.all()
    if not sessions:
        return "no sessions yet"
    rt = await core.stores.config.get()
    return "\n".join(describe_session(rt, s) for s in sessions)


async def routes_text(core: Core) -> str:
    rt = await core.stores.config.get()
    return "\n".join(r.describe() for r in rt.routes.values()) or "no failover routes"


async def ready_line(core: Core) -> str:
    rt = await core.stores.config.get()
    keys = ", ".join(f"{b}: {core.router.count(b)} key(s)" for b in core.backends)
    return (
        f"llm-intercept {VERSION} ready: default backend {rt.default_backend}; {keys}; "
        f"command prefix {core.settings.command_prefix}; redaction {'on' if rt.redact else 'off'}; "
        f"interactive {'on' if rt.interactive else 'off'}"
    )

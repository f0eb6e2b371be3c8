"""The texts the proxy shows about itself: banner, `!/status`, `llm.status`, sessions and routes."""

from __future__ import annotations

import math

from addons.pipeline.core import Core
from addons.stores.sessions import Session

VERSION = "0.1.0"


def _backend_line(core: Core, name: str) -> str:
    e = core.catalog.entry(name)
    keys = core.router.count(name)
    if e.status == "ok":
        return f"{name}: {keys} key(s), {len(e.models)} models"
    return f"{name}: {keys} key(s), unavailable ({e.reason or 'discovery pending'})"


def banner(core: Core, session: Session) -> str:
    lines = [
        f"llm-intercept {VERSION} · session {session.id}",
        f"default backend: {core.runtime.default_backend}",
        *(_backend_line(core, b) for b in core.backends),
        f"type {core.settings.command_prefix}help for commands",
    ]
    return "\n".join(lines)


def status_text(core: Core, session: Session | None = None) -> str:
    rt = core.runtime
    lines = [f"llm-intercept {VERSION} status", f"default backend: {rt.default_backend}"]
    for b in core.backends:
        names = ", ".join(core.settings.keyring(b).names) or "none"
        lines.append(f"{_backend_line(core, b)}; keys: {names}")
    cooling = core.router.cooldowns.active()
    lines.append("cooldowns: " + ("none" if not cooling else ""))
    for b, m, k, left, why in cooling:
        when = "retired" if left == math.inf else f"{math.ceil(left)} s left"
        lines.append(f"  {b}:{m} {k}: {when} ({why})")
    lines.append("failover routes: " + ("none" if not rt.routes else ""))
    lines += [f"  {r.describe()}" for r in rt.routes.values()]
    lines.append(f"redaction: {'on' if rt.redact else 'off'}; sessions: {len(core.sessions)}")
    if session is not None:
        lines.append(f"this session: {describe_session(core, session)}")
    return "\n".join(lines)


def describe_session(core: Core, s: Session) -> str:
    rt = core.runtime
    interactive = rt.interactive if s.interactive is None else s.interactive
    return (
        f"{s.id}: model={s.model or '(request)'}, backend={s.backend or rt.default_backend}, "
        f"project={s.project or '-'}, interactive={'on' if interactive else 'off'}"
    )


def sessions_text(core: Core) -> str:
    sessions = core.sessions.all()
    if not sessions:
        return "no sessions yet"
    return "\n".join(describe_session(core, s) for s in sessions)


def routes_text(core: Core) -> str:
    return "\n".join(r.describe() for r in core.runtime.routes.values()) or "no failover routes"


def ready_line(core: Core) -> str:
    rt = core.runtime
    keys = ", ".join(f"{b}: {core.router.count(b)} key(s)" for b in core.backends)
    return (
        f"llm-intercept {VERSION} ready: default backend {rt.default_backend}; {keys}; "
        f"command prefix {core.settings.command_prefix}; redaction {'on' if rt.redact else 'off'}; "
        f"interactive {'on' if rt.interactive else 'off'}"
    )

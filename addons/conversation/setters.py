"""set(...) and unset(...): session fields, and the settings every session shares."""

from __future__ import annotations

import difflib

from addons.budgets.limits import parse_limit
from addons.conversation.changeset import ChangeSet, CommandContext, CommandError, change
from addons.conversation.parser import Command
from addons.stores.base import MAX_FIELD_LENGTH

TRUE_WORDS = {"true", "on", "yes", "1"}
FALSE_WORDS = {"false", "off", "no", "0"}
SETTABLE = ("model", "backend", "default-backend", "project", "interactive", "redact-api-keys-in-prompts",
            "budget", "loop-guard")  # fmt: skip


def _bool(value: str, what: str) -> bool:
    v = value.strip().lower()
    if v in TRUE_WORDS:
        return True
    if v in FALSE_WORDS:
        return False
    raise CommandError(f"{what} must be one of true/false/on/off/yes/no/1/0, not '{value}'")


def _backend(ctx: CommandContext, value: str, what: str) -> str:
    b = value.strip().lower()
    if b not in ctx.catalog.backends:
        raise CommandError(f"unknown backend '{value}' for {what}; valid: {', '.join(ctx.catalog.backends)}")
    return b


def resolve_model(ctx: CommandContext, value: str) -> str:
    """`backend:model` or a bare model of the session's current backend, checked against discovery."""
    value = value.strip()
    if not value:
        raise CommandError("model must not be empty")
    if len(value) > MAX_FIELD_LENGTH:
        raise CommandError(f"model is {len(value)} characters long; at most {MAX_FIELD_LENGTH} are allowed")
    if value in ctx.runtime.routes:
        return value
    current = ctx.session.backend or ctx.runtime.default_backend
    head, sep, _ = value.partition(":")
    if sep and head.lower() not in ctx.catalog.backends and "/" not in head and head.isidentifier():
        raise CommandError(
            f"unknown backend '{head}' in model '{value}'; valid: {', '.join(ctx.catalog.backends)}"
        )
    backend, model = ctx.catalog.split(value, current)
    entry = ctx.catalog.entry(backend)
    if entry.status == "ok" and not entry.knows(model):
        close = difflib.get_close_matches(model, entry.models, n=3, cutoff=0.5)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise CommandError(f"model '{model}' is not available on {backend}{hint}")
    return f"{backend}:{model}"


def _set_field(ctx: CommandContext, key: str, value: str) -> ChangeSet:
    if len(value) > MAX_FIELD_LENGTH:
        raise CommandError(f"{key} is {len(value)} characters long; at most {MAX_FIELD_LENGTH} are allowed")
    if key == "model":
        m = resolve_model(ctx, value)
        return change(f"model set to {m} (this session)", session={"model": m})
    if key == "backend":
        b = _backend(ctx, value, "backend")
        note = "" if ctx.key_counts.get(b) else f" (warning: no API key configured for {b})"
        return change(f"backend set to {b} (this session){note}", session={"backend": b})
    if key == "default-backend":
        b = _backend(ctx, value, "default-backend")
        return change(f"default backend set to {b} (all sessions)", runtime={"default_backend": b})
    if key == "project":
        p = value.strip()
        if not p:
            raise CommandError("project must not be empty; use unset(project) to clear it")
        return change(f"project set to {p} (this session)", session={"project": p})
    if key == "interactive":
        on = _bool(value, "interactive")
        # Switching it on greets the session again, on this very reply.
        fields = {"interactive": on, "greeted": False} if on else {"interactive": on}
        return change(f"interactive mode {'on' if on else 'off'} (this session)", session=fields)
    if key == "redact-api-keys-in-prompts":
        on = _bool(value, "redact-api-keys-in-prompts")
        return change(f"API key redaction {'on' if on else 'off'} (all sessions)", runtime={"redact": on})
    if key == "budget":
        return _budget(ctx, value)
    if key == "loop-guard":
        on = _bool(value, "loop-guard")
        return change(f"loop guards {'on' if on else 'off'} (this session)", session={"loop_guard": on})
    raise CommandError(f"cannot set '{key}'; settable: {', '.join(SETTABLE)}")


def _budget(ctx: CommandContext, value: str) -> ChangeSet:
    try:
        limit = parse_limit(value)
    except ValueError as e:
        raise CommandError(str(e)) from None
    if limit is None:
        return _unset_field(ctx, "budget")
    # The session's whole spend counts, calls before the budget was set included.
    return change(
        f"budget set to {limit.show(limit.amount)} for this session's whole spend "
        f"({ctx.prefix}status shows what is left)",
        session={"budget": limit.text()},
    )


def _unset_field(ctx: CommandContext, key: str) -> ChangeSet:
    rt = ctx.runtime
    if key in ("model", "backend", "project"):
        return change(f"{key} override cleared (this session)", session={key: None})
    if key == "budget":
        return change("budget removed (this session)", session={"budget": None})
    if key == "loop-guard":
        return change("loop guards back to the configured default", session={"loop_guard": None})
    if key == "interactive":
        default = "on" if rt.interactive else "off"
        return change(f"interactive mode back to the default ({default})", session={"interactive": None})
    if key == "default-backend":
        b = rt.base["default_backend"]
        return change(f"default backend back to {b}", runtime={"default_backend": b})
    if key == "redact-api-keys-in-prompts":
        on = rt.base["redact_api_keys_in_prompts"]
        return change(
            f"API key redaction back to the start-up value ({'on' if on else 'off'})", runtime={"redact": on}
        )
    raise CommandError(f"cannot unset '{key}'; unsettable: {', '.join(SETTABLE)}")


def _merge(parts: list[ChangeSet]) -> ChangeSet:
    """Several fields of one command: one message; all of it a global change if any part is."""
    merged = ChangeSet()
    for p in parts:
        merged.add(p)
    return change("; ".join(merged.messages), session=merged.session, runtime=merged.runtime,
                  routes=merged.routes, show_banner=merged.show_banner)  # fmt: skip


async def cmd_set(ctx: CommandContext, cmd: Command) -> ChangeSet:
    if cmd.positional:
        raise CommandError(f"set takes key=value arguments, e.g. {ctx.prefix}set(model=BACKEND:MODEL)")
    if not cmd.args:
        raise CommandError(f"set needs at least one key=value; settable: {', '.join(SETTABLE)}")
    return _merge([_set_field(ctx, k, v) for k, v in cmd.args.items()])


async def cmd_unset(ctx: CommandContext, cmd: Command) -> ChangeSet:
    names = [p.strip().lower() for p in cmd.positional] + list(cmd.args)
    if not names:
        raise CommandError(f"unset needs names, e.g. {ctx.prefix}unset(model, project)")
    return _merge([_unset_field(ctx, n) for n in names])


def current_settings(ctx: CommandContext) -> str:
    s, rt = ctx.session, ctx.runtime
    interactive = rt.interactive if s.interactive is None else s.interactive
    return (
        f"model={s.model or '(request)'}, backend={s.backend or rt.default_backend}, "
        f"default-backend={rt.default_backend}, project={s.project or '-'}, "
        f"interactive={'on' if interactive else 'off'}, "
        f"redact-api-keys-in-prompts={'on' if rt.redact else 'off'}, budget={s.budget or 'none'}, "
        f"loop-guard={'default' if s.loop_guard is None else 'on' if s.loop_guard else 'off'}"
    )

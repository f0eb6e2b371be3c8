"""In-chat command handlers: validate everything first, then apply all or nothing.

Pure Python: handlers read and change a `CommandContext` (session, runtime config, catalog) and return
human-readable confirmations. Parsing lives in command_parser.py.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

from addons.conversation.parser import Command, ParseError
from addons.routing.catalog import ModelCatalog
from addons.routing.planner import MAX_ROUTE_ELEMENTS, MAX_ROUTES, POLICIES, ROUTE_NAME, Route, unique
from addons.stores.jsonfile import RuntimeConfig
from addons.stores.sessions import MAX_FIELD_LENGTH, Session

TRUE_WORDS = {"true", "on", "yes", "1"}
FALSE_WORDS = {"false", "off", "no", "0"}


class CommandError(ValueError):
    """What was wrong, and what would be valid."""


@dataclass(slots=True)
class CommandContext:
    session: Session
    runtime: RuntimeConfig
    catalog: ModelCatalog
    key_counts: dict[str, int]
    prefix: str
    banner: Callable[[Session], str]
    status: Callable[[Session], str]
    routes: dict[str, Route] = field(default_factory=dict)
    # False (setting `commands: session`): refuse what changes other sessions or the routes.
    allow_global: bool = True
    # Routes that earlier commands of this message create (nothing is applied until all are valid).
    new_routes: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Outcome:
    """A validated command: `apply` changes state; `message` is what the user is told."""

    message: str
    apply: Callable[[], None] = lambda: None
    changes_global: bool = False
    show_banner: bool = False


@dataclass(frozen=True, slots=True)
class Spec:
    name: str
    usage: str
    summary: str
    handler: Callable[[CommandContext, Command], Outcome]
    current: Callable[[CommandContext], str] | None = None
    changes_routes: bool = False  # refused before validation when global changes are not allowed


# -- setters -------------------------------------------------------------------------------------------


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
    if value in ctx.routes:
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


def _set_field(ctx: CommandContext, key: str, value: str) -> Outcome:
    s, rt = ctx.session, ctx.runtime
    if len(value) > MAX_FIELD_LENGTH:
        raise CommandError(f"{key} is {len(value)} characters long; at most {MAX_FIELD_LENGTH} are allowed")
    if key == "model":
        m = resolve_model(ctx, value)
        return Outcome(f"model set to {m} (this session)", lambda: setattr(s, "model", m))
    if key == "backend":
        b = _backend(ctx, value, "backend")
        note = "" if ctx.key_counts.get(b) else f" (warning: no API key configured for {b})"
        return Outcome(f"backend set to {b} (this session){note}", lambda: setattr(s, "backend", b))
    if key == "default-backend":
        b = _backend(ctx, value, "default-backend")
        return Outcome(
            f"default backend set to {b} (all sessions)", lambda: setattr(rt, "default_backend", b), True
        )
    if key == "project":
        p = value.strip()
        if not p:
            raise CommandError("project must not be empty; use unset(project) to clear it")
        return Outcome(f"project set to {p} (this session)", lambda: setattr(s, "project", p))
    if key == "interactive":
        on = _bool(value, "interactive")

        def apply() -> None:
            s.interactive = on
            if on:
                s.greeted = False

        # Switching it on greets the session again, on this very reply.
        return Outcome(f"interactive mode {'on' if on else 'off'} (this session)", apply)
    if key == "redact-api-keys-in-prompts":
        on = _bool(value, "redact-api-keys-in-prompts")
        return Outcome(
            f"API key redaction {'on' if on else 'off'} (all sessions)",
            lambda: setattr(rt, "redact", on),
            True,
        )
    raise CommandError(f"cannot set '{key}'; settable: {', '.join(SETTABLE)}")


SETTABLE = ("model", "backend", "default-backend", "project", "interactive", "redact-api-keys-in-prompts")


def _unset_field(ctx: CommandContext, key: str) -> Outcome:
    s, rt = ctx.session, ctx.runtime
    if key in ("model", "backend", "project"):
        return Outcome(f"{key} override cleared (this session)", lambda: setattr(s, key, None))
    if key == "interactive":
        default = "on" if rt.interactive else "off"
        return Outcome(
            f"interactive mode back to the default ({default})", lambda: setattr(s, "interactive", None)
        )
    if key == "default-backend":
        b = rt.base["default_backend"]
        return Outcome(f"default backend back to {b}", lambda: setattr(rt, "default_backend", b), True)
    if key == "redact-api-keys-in-prompts":
        on = rt.base["redact_api_keys_in_prompts"]
        return Outcome(
            f"API key redaction back to the start-up value ({'on' if on else 'off'})",
            lambda: setattr(rt, "redact", on),
            True,
        )
    raise CommandError(f"cannot unset '{key}'; unsettable: {', '.join(SETTABLE)}")


def _merge(outcomes: list[Outcome]) -> Outcome:
    def apply() -> None:
        for o in outcomes:
            o.apply()

    return Outcome(
        "; ".join(o.message for o in outcomes),
        apply,
        any(o.changes_global for o in outcomes),
        any(o.show_banner for o in outcomes),
    )


def cmd_set(ctx: CommandContext, cmd: Command) -> Outcome:
    if cmd.positional:
        raise CommandError(
            f"set takes key=value arguments, e.g. {ctx.prefix}set(model=gemini:gemini-2.5-flash)"
        )
    if not cmd.args:
        raise CommandError(f"set needs at least one key=value; settable: {', '.join(SETTABLE)}")
    return _merge([_set_field(ctx, k, v) for k, v in cmd.args.items()])


def cmd_unset(ctx: CommandContext, cmd: Command) -> Outcome:
    names = [p.strip().lower() for p in cmd.positional] + list(cmd.args)
    if not names:
        raise CommandError(f"unset needs names, e.g. {ctx.prefix}unset(model, project)")
    return _merge([_unset_field(ctx, n) for n in names])


def cmd_hello(ctx: CommandContext, cmd: Command) -> Outcome:
    return Outcome("", show_banner=True)


def cmd_help(ctx: CommandContext, cmd: Command) -> Outcome:
    wanted = [p.strip().lower().removeprefix(ctx.prefix) for p in cmd.positional]
    unknown = [w for w in wanted if w not in COMMANDS]
    if unknown:
        raise CommandError(f"no command '{unknown[0]}'; commands: {', '.join(COMMANDS)}")
    return Outcome(help_text(ctx, wanted or list(COMMANDS)))


def cmd_status(ctx: CommandContext, cmd: Command) -> Outcome:
    return Outcome(ctx.status(ctx.session))


# -- failover routes -----------------------------------------------------------------------------------


def _route_name(ctx: CommandContext, cmd: Command, *, exists: bool) -> str:
    name = cmd.args.get("name", "").strip()
    if not name:
        raise CommandError(f"{cmd.name} needs name=ROUTE")
    if exists and name not in ctx.routes:
        known = ", ".join(ctx.routes) or "none yet"
        raise CommandError(f"no failover route '{name}'; routes: {known}")
    return name


def _not_a_model(ctx: CommandContext, name: str) -> None:
    """A route named like a model would capture every request for that model, other clients' included."""
    pending = [b for b in ctx.catalog.backends if ctx.catalog.entry(b).status == "pending"]
    if pending:
        raise CommandError(f"model discovery is still running ({', '.join(pending)}); try again in a moment")
    folded = name.casefold()
    for b in ctx.catalog.backends:
        if any(m.casefold() == folded for m in ctx.catalog.entry(b).models):
            raise CommandError(f"'{name}' is a model id on {b}; a route may not take a model's name")


def _element(ctx: CommandContext, raw: str) -> tuple[str, str]:
    b, sep, m = raw.strip().partition(":")
    if not sep or not m:
        raise CommandError(f"route element '{raw}' must be BACKEND:MODEL")
    if b.lower() not in ctx.catalog.backends:
        raise CommandError(f"unknown backend '{b}' in '{raw}'; valid: {', '.join(ctx.catalog.backends)}")
    full = resolve_model(ctx, f"{b.lower()}:{m}")
    backend, _, model = full.partition(":")
    return backend, model


def cmd_create_route(ctx: CommandContext, cmd: Command) -> Outcome:
    name = _route_name(ctx, cmd, exists=False)
    if not ROUTE_NAME.match(name):
        raise CommandError("a route name is 1-64 letters, digits, '.', '_' or '-'")
    if name in ctx.routes or name in ctx.new_routes:
        raise CommandError(f"failover route '{name}' already exists")
    if len(ctx.routes) + len(ctx.new_routes) >= MAX_ROUTES:
        raise CommandError(f"{MAX_ROUTES} failover routes is the most allowed; delete one first")
    _not_a_model(ctx, name)
    policy = cmd.args.get("policy", "k").strip().lower()
    if policy not in POLICIES:
        raise CommandError(f"policy must be one of {', '.join(POLICIES)}, not '{policy}'")
    extra = set(cmd.args) - {"name", "policy"}
    if extra or cmd.positional:
        raise CommandError(
            "create-failover-route takes name= and policy= only; add elements with route-append"
        )
    ctx.new_routes.add(name)
    return Outcome(
        f"failover route {name} created (policy {policy}: {POLICIES[policy]})",
        lambda: ctx.routes.__setitem__(name, Route(name, policy)),
        True,
    )


def _route_edit(ctx: CommandContext, cmd: Command, front: bool) -> Outcome:
    name = _route_name(ctx, cmd, exists=True)
    if not cmd.positional:
        raise CommandError(
            f"{cmd.name} needs elements, e.g. {ctx.prefix}{cmd.name}(name={name},gemini:gemini-2.5-flash)"
        )
    route = ctx.routes[name]
    too_many = f"a route holds at most {MAX_ROUTE_ELEMENTS} elements"
    # Count before validating: each element may cost a catalog look-up.
    if len(cmd.positional) > MAX_ROUTE_ELEMENTS:
        raise CommandError(f"{too_many}; this gives {len(cmd.positional)}")
    elements = unique(_element(ctx, p) for p in cmd.positional)
    # A repeated element is dropped (prepending one moves it to the front).
    merged = unique(elements + route.elements if front else route.elements + elements)
    if len(merged) > MAX_ROUTE_ELEMENTS:
        raise CommandError(f"{too_many}; {name} has {len(route.elements)} and this would make {len(merged)}")

    def apply() -> None:
        route.elements = merged

    shown = ", ".join(f"{b}:{m}" for b, m in elements)
    return Outcome(f"route {name}: {'prepended' if front else 'appended'} {shown}", apply, True)


def cmd_route_append(ctx: CommandContext, cmd: Command) -> Outcome:
    return _route_edit(ctx, cmd, front=False)


def cmd_route_prepend(ctx: CommandContext, cmd: Command) -> Outcome:
    return _route_edit(ctx, cmd, front=True)


def cmd_route_clear(ctx: CommandContext, cmd: Command) -> Outcome:
    name = _route_name(ctx, cmd, exists=True)
    return Outcome(f"route {name} cleared", lambda: setattr(ctx.routes[name], "elements", []), True)


def cmd_delete_route(ctx: CommandContext, cmd: Command) -> Outcome:
    name = _route_name(ctx, cmd, exists=True)
    return Outcome(f"failover route {name} deleted", lambda: ctx.routes.pop(name, None), True)


def cmd_list_routes(ctx: CommandContext, cmd: Command) -> Outcome:
    if not ctx.routes:
        return Outcome(
            f"no failover routes; create one with {ctx.prefix}create-failover-route(name=N,policy=k)"
        )
    return Outcome("\n".join(r.describe() for r in ctx.routes.values()))


def cmd_route_list(ctx: CommandContext, cmd: Command) -> Outcome:
    return Outcome(ctx.routes[_route_name(ctx, cmd, exists=True)].describe())


def help_text(ctx: CommandContext, names: list[str]) -> str:
    lines = ["llm-intercept commands:" if len(names) > 1 else ""]
    for n in names:
        spec = COMMANDS[n]
        line = f"{ctx.prefix}{spec.usage} — {spec.summary}"
        if spec.current:
            line += f" [now: {spec.current(ctx)}]"
        lines.append(line)
    return "\n".join(line for line in lines if line)


def _current_settings(ctx: CommandContext) -> str:
    s, rt = ctx.session, ctx.runtime
    interactive = rt.interactive if s.interactive is None else s.interactive
    return (
        f"model={s.model or '(request)'}, backend={s.backend or rt.default_backend}, "
        f"default-backend={rt.default_backend}, project={s.project or '-'}, "
        f"interactive={'on' if interactive else 'off'}, "
        f"redact-api-keys-in-prompts={'on' if rt.redact else 'off'}"
    )


COMMANDS: dict[str, Spec] = {
    s.name: s
    for s in (
        Spec(
            "set",
            "set(model=BACKEND:MODEL | backend=B | default-backend=B | project=P | interactive=on|off | "
            "redact-api-keys-in-prompts=on|off)",
            "change settings (model, backend, project, interactive: this session; "
            "default-backend, redaction: all sessions)",
            cmd_set,
            _current_settings,
        ),
        Spec("unset", "unset(NAME, ...)", "clear overrides, back to defaults", cmd_unset),
        Spec("hello", "hello", "show the banner", cmd_hello),
        Spec("help", "help / help(COMMAND)", "list commands, or describe one", cmd_help),
        Spec(
            "status",
            "status",
            "show backends, keys (by name), cooldowns, routes and this session",
            cmd_status,
        ),
        Spec(
            "create-failover-route",
            "create-failover-route(name=N, policy=k|m|km|mk)",
            "create an empty failover route (k: all keys of the first element; m: each element, first key; "
            "km: each element, all keys; mk: first keys of all elements, then second keys...)",
            cmd_create_route,
            changes_routes=True,
        ),
        Spec(
            "route-append",
            "route-append(name=N, BACKEND:MODEL, ...)",
            "add elements at the end",
            cmd_route_append,
            changes_routes=True,
        ),
        Spec(
            "route-prepend",
            "route-prepend(name=N, BACKEND:MODEL, ...)",
            "add elements at the front",
            cmd_route_prepend,
            changes_routes=True,
        ),
        Spec(
            "route-clear",
            "route-clear(name=N)",
            "remove every element of a route",
            cmd_route_clear,
            changes_routes=True,
        ),
        Spec(
            "delete-failover-route",
            "delete-failover-route(name=N)",
            "delete a route",
            cmd_delete_route,
            changes_routes=True,
        ),
        Spec("list-failover-routes", "list-failover-routes", "list every route", cmd_list_routes),
        Spec("route-list", "route-list(name=N)", "show one route", cmd_route_list),
    )
}


@dataclass(slots=True)
class CommandRun:
    """The result of handling one message's commands."""

    messages: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    changes_global: bool = False
    global_changes: list[str] = field(default_factory=list)  # what changed for every session
    show_banner: bool = False


def _refused(ctx: CommandContext, cmd: Command) -> str:
    return (
        f"{ctx.prefix}{cmd.name}: refused: it changes every session or the failover routes, and this proxy "
        "only runs commands that change your own session (setting commands: session)"
    )


def run_commands(
    ctx: CommandContext, commands: tuple[Command, ...], parse_errors: tuple[ParseError, ...]
) -> CommandRun:
    """Validate every command, then apply them all, or none if anything is wrong."""
    run = CommandRun()
    for e in parse_errors:
        run.errors.append(e.message)
    outcomes: list[Outcome] = []
    for cmd in commands:
        spec = COMMANDS.get(cmd.name)
        if spec is None:
            run.errors.append(f"unknown command {ctx.prefix}{cmd.name}; commands: {', '.join(COMMANDS)}")
            continue
        if spec.changes_routes and not ctx.allow_global:
            run.errors.append(_refused(ctx, cmd))
            continue
        try:
            outcome = spec.handler(ctx, cmd)
        except CommandError as e:
            run.errors.append(f"{ctx.prefix}{cmd.name}: {e}")
            continue
        if outcome.changes_global and not ctx.allow_global:
            run.errors.append(_refused(ctx, cmd))
            continue
        outcomes.append(outcome)
    if run.errors:
        run.errors.append("nothing was applied")
        return run
    for o in outcomes:
        o.apply()
        if o.message:
            run.messages.append(o.message)
        run.changes_global |= o.changes_global
        if o.changes_global:
            run.global_changes.append(o.message)
        run.show_banner |= o.show_banner
    return run

"""The in-chat command registry, and running one message's commands: every command is validated against
the state as it stands, and the message's change set is returned only when all of them are valid.

Pure Python: handlers read a `CommandContext` and return a `ChangeSet`; they change nothing themselves.
Parsing lives in parser.py; the pipeline applies the change set to the stores.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from addons.conversation import route_commands as rc
from addons.conversation.changeset import ChangeSet, CommandContext, CommandError, change
from addons.conversation.parser import Command, ParseError
from addons.conversation.setters import cmd_set, cmd_unset, current_settings
from addons.conversation.usage_command import cmd_usage


@dataclass(frozen=True, slots=True)
class Spec:
    name: str
    usage: str
    summary: str
    handler: Callable[[CommandContext, Command], Awaitable[ChangeSet]]
    current: Callable[[CommandContext], str] | None = None
    changes_routes: bool = False  # refused before validation when global changes are not allowed


async def cmd_hello(ctx: CommandContext, cmd: Command) -> ChangeSet:
    return change("", show_banner=True)


async def cmd_help(ctx: CommandContext, cmd: Command) -> ChangeSet:
    wanted = [p.strip().lower().removeprefix(ctx.prefix) for p in cmd.positional]
    unknown = [w for w in wanted if w not in COMMANDS]
    if unknown:
        raise CommandError(f"no command '{unknown[0]}'; commands: {', '.join(COMMANDS)}")
    return change(help_text(ctx, wanted or list(COMMANDS)))


async def cmd_status(ctx: CommandContext, cmd: Command) -> ChangeSet:
    return change(await ctx.status(ctx.session))


def help_text(ctx: CommandContext, names: list[str]) -> str:
    lines = ["llm-intercept commands:" if len(names) > 1 else ""]
    for n in names:
        spec = COMMANDS[n]
        line = f"{ctx.prefix}{spec.usage} — {spec.summary}"
        if spec.current:
            line += f" [now: {spec.current(ctx)}]"
        lines.append(line)
    return "\n".join(line for line in lines if line)


def _route_spec(name: str, usage: str, summary: str, handler: Callable[..., Awaitable[ChangeSet]]) -> Spec:
    return Spec(name, usage, summary, handler, changes_routes=True)


COMMANDS: dict[str, Spec] = {
    s.name: s
    for s in (
        Spec(
            "set",
            "set(model=BACKEND:MODEL | backend=B | default-backend=B | project=P | interactive=on|off | "
            "redact-api-keys-in-prompts=on|off | budget=2.50|200k|off | loop-guard=on|off)",
            "change settings (model, backend, project, interactive, budget, loop-guard: this session; "
            "default-backend, redaction: all sessions)",
            cmd_set,
            current_settings,
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
        Spec("usage", "usage", "show tokens and cost of this session, its project and today", cmd_usage),
        _route_spec(
            "create-failover-route",
            "create-failover-route(name=N, policy=k|m|km|mk)",
            "create an empty failover route (k: all keys of the first element; m: each element, first key; "
            "km: each element, all keys; mk: first keys of all elements, then second keys...)",
            rc.cmd_create_route,
        ),
        _route_spec(
            "route-append",
            "route-append(name=N, BACKEND:MODEL, ...)",
            "add elements at the end",
            rc.cmd_route_append,
        ),
        _route_spec(
            "route-prepend",
            "route-prepend(name=N, BACKEND:MODEL, ...)",
            "add elements at the front",
            rc.cmd_route_prepend,
        ),
        _route_spec(
            "route-clear", "route-clear(name=N)", "remove every element of a route", rc.cmd_route_clear
        ),
        _route_spec(
            "delete-failover-route", "delete-failover-route(name=N)", "delete a route", rc.cmd_delete_route
        ),
        Spec("list-failover-routes", "list-failover-routes", "list every route", rc.cmd_list_routes),
        Spec("route-list", "route-list(name=N)", "show one route", rc.cmd_route_list),
    )
}


@dataclass(slots=True)
class CommandRun:
    """The result of one message's commands: errors (then nothing is applied), or the change set."""

    errors: list[str] = field(default_factory=list)
    changes: ChangeSet = field(default_factory=ChangeSet)


def _refused(ctx: CommandContext, cmd: Command) -> str:
    return (
        f"{ctx.prefix}{cmd.name}: refused: it changes every session or the failover routes, and this proxy "
        "only runs commands that change your own session (setting commands: session)"
    )


async def _validate(ctx: CommandContext, cmd: Command) -> ChangeSet | str:
    """The command's change set, or what is wrong with it."""
    spec = COMMANDS.get(cmd.name)
    if spec is None:
        return f"unknown command {ctx.prefix}{cmd.name}; commands: {', '.join(COMMANDS)}"
    if spec.changes_routes and not ctx.allow_global:
        return _refused(ctx, cmd)
    try:
        changes = await spec.handler(ctx, cmd)
    except CommandError as e:
        return f"{ctx.prefix}{cmd.name}: {e}"
    return _refused(ctx, cmd) if changes.changes_global and not ctx.allow_global else changes


async def run_commands(
    ctx: CommandContext, commands: tuple[Command, ...], parse_errors: tuple[ParseError, ...]
) -> CommandRun:
    """Validate every command; the change set of them all, or errors and an empty change set."""
    run = CommandRun(errors=[e.message for e in parse_errors])
    for cmd in commands:
        result = await _validate(ctx, cmd)
        if isinstance(result, str):
            run.errors.append(result)
        else:
            run.changes.add(result)
    if run.errors:
        run.errors.append("nothing was applied")
        run.changes = ChangeSet()
    return run

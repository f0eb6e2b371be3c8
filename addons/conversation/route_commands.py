"""Commands that create, edit, delete and show failover routes."""

from __future__ import annotations

from addons.conversation.changeset import ChangeSet, CommandContext, CommandError, change
from addons.conversation.parser import Command
from addons.conversation.setters import resolve_model
from addons.routing.routes import MAX_ROUTE_ELEMENTS, MAX_ROUTES, POLICIES, ROUTE_NAME, unique
from addons.stores.base import Route


def _route_name(ctx: CommandContext, cmd: Command, *, exists: bool) -> str:
    name = cmd.args.get("name", "").strip()
    if not name:
        raise CommandError(f"{cmd.name} needs name=ROUTE")
    routes = ctx.runtime.routes
    if exists and name not in routes:
        known = ", ".join(routes) or "none yet"
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


async def cmd_create_route(ctx: CommandContext, cmd: Command) -> ChangeSet:
    name = _route_name(ctx, cmd, exists=False)
    if not ROUTE_NAME.match(name):
        raise CommandError("a route name is 1-64 letters, digits, '.', '_' or '-'")
    if name in ctx.runtime.routes or name in ctx.new_routes:
        raise CommandError(f"failover route '{name}' already exists")
    if len(ctx.runtime.routes) + len(ctx.new_routes) >= MAX_ROUTES:
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
    message = f"failover route {name} created (policy {policy}: {POLICIES[policy]})"
    return change(message, routes={name: Route(name, policy)})


async def _route_edit(ctx: CommandContext, cmd: Command, front: bool) -> ChangeSet:
    name = _route_name(ctx, cmd, exists=True)
    if not cmd.positional:
        raise CommandError(
            f"{cmd.name} needs elements, e.g. {ctx.prefix}{cmd.name}(name={name},BACKEND:MODEL)"
        )
    route = ctx.runtime.routes[name]
    too_many = f"a route holds at most {MAX_ROUTE_ELEMENTS} elements"
    # Count before validating: each element may cost a catalog look-up.
    if len(cmd.positional) > MAX_ROUTE_ELEMENTS:
        raise CommandError(f"{too_many}; this gives {len(cmd.positional)}")
    elements = unique(_element(ctx, p) for p in cmd.positional)
    # A repeated element is dropped (prepending one moves it to the front).
    merged = unique(elements + route.elements if front else route.elements + elements)
    if len(merged) > MAX_ROUTE_ELEMENTS:
        raise CommandError(f"{too_many}; {name} has {len(route.elements)} and this would make {len(merged)}")
    shown = ", ".join(f"{b}:{m}" for b, m in elements)
    message = f"route {name}: {'prepended' if front else 'appended'} {shown}"
    return change(message, routes={name: Route(name, route.policy, merged)})


async def cmd_route_append(ctx: CommandContext, cmd: Command) -> ChangeSet:
    return await _route_edit(ctx, cmd, front=False)


async def cmd_route_prepend(ctx: CommandContext, cmd: Command) -> ChangeSet:
    return await _route_edit(ctx, cmd, front=True)


async def cmd_route_clear(ctx: CommandContext, cmd: Command) -> ChangeSet:
    name = _route_name(ctx, cmd, exists=True)
    return change(f"route {name} cleared", routes={name: Route(name, ctx.runtime.routes[name].policy)})


async def cmd_delete_route(ctx: CommandContext, cmd: Command) -> ChangeSet:
    name = _route_name(ctx, cmd, exists=True)
    return change(f"failover route {name} deleted", routes={name: None})


async def cmd_list_routes(ctx: CommandContext, cmd: Command) -> ChangeSet:
    if not ctx.runtime.routes:
        return change(
            f"no failover routes; create one with {ctx.prefix}create-failover-route(name=N,policy=k)"
        )
    return change("\n".join(r.describe() for r in ctx.runtime.routes.values()))


async def cmd_route_list(ctx: CommandContext, cmd: Command) -> ChangeSet:
    return change(ctx.runtime.routes[_route_name(ctx, cmd, exists=True)].describe())

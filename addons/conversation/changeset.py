"""What a message's commands change, decided before anything is changed: one place (the pipeline)
applies a change set to the stores, all of it or, when any command is invalid, none."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from addons.routing.catalog import ModelCatalog
from addons.stores.base import Route, RuntimeConfig, Session


class CommandError(ValueError):
    """What was wrong, and what would be valid."""


@dataclass(slots=True)
class ChangeSet:
    session: dict[str, Any] = field(default_factory=dict)  # Session field -> new value
    runtime: dict[str, Any] = field(default_factory=dict)  # RuntimeConfig field -> new value
    routes: dict[str, Route | None] = field(default_factory=dict)  # None: the route is deleted
    messages: list[str] = field(default_factory=list)  # what the user is told, in order
    global_changes: list[str] = field(default_factory=list)  # what changed for every session
    show_banner: bool = False

    @property
    def changes_global(self) -> bool:
        return bool(self.runtime or self.routes)

    def add(self, other: ChangeSet) -> None:
        """`other` after this one: where both change the same thing, `other` wins."""
        self.session.update(other.session)
        self.runtime.update(other.runtime)
        self.routes.update(other.routes)
        self.messages += other.messages
        self.global_changes += other.global_changes
        self.show_banner |= other.show_banner

    def on_session(self, s: Session) -> Session:
        return dataclasses.replace(s, **self.session) if self.session else s

    def on_runtime(self, rt: RuntimeConfig) -> RuntimeConfig:
        if not self.changes_global:
            return rt
        routes = dict(rt.routes)
        for name, route in self.routes.items():
            if route is None:
                routes.pop(name, None)
            else:
                routes[name] = route
        return dataclasses.replace(rt, **self.runtime, routes=routes)


def change(
    message: str,
    *,
    session: dict[str, Any] | None = None,
    runtime: dict[str, Any] | None = None,
    routes: dict[str, Route | None] | None = None,
    show_banner: bool = False,
) -> ChangeSet:
    """One command's change set: a global one lists its message among the global changes."""
    cs = ChangeSet(session or {}, runtime or {}, routes or {}, [message] if message else [], [], show_banner)
    if cs.changes_global:
        cs.global_changes.append(message)
    return cs


@dataclass(slots=True)
class CommandContext:
    """What handlers validate against: the state as it was when the message arrived."""

    session: Session
    runtime: RuntimeConfig
    catalog: ModelCatalog
    key_counts: dict[str, int]
    prefix: str
    banner: Callable[[Session, RuntimeConfig], str]
    status: Callable[[Session], Awaitable[str]]
    # False (setting `commands: session`): refuse what changes other sessions or the routes.
    allow_global: bool = True
    # Routes that earlier commands of this message create (nothing is applied until all are valid).
    new_routes: set[str] = field(default_factory=set)
    usage: Callable[[Session], Awaitable[str]] | None = None  # `!/usage`'s text; None: no usage is kept

"""Everything the proxy does to a chat request before it leaves: session, commands, redaction.

Pure Python. The result says either "answer this yourself" (command-only messages, command errors)
or "forward this request", with the text to show before the model's reply in interactive mode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from addons.catalog import ModelCatalog
from addons.command_parser import scan_content
from addons.commands import COMMANDS, CommandContext, run_commands
from addons.redaction import Redactor
from addons.sessions import Session
from addons.state import RuntimeConfig


@dataclass(slots=True)
class Prepared:
    request: dict[str, Any]
    session: Session
    interactive: bool
    reply_text: str | None = None  # set: the proxy answers this itself, no backend call
    prelude: str = ""  # interactive: shown before the model's reply
    commands: list[str] = field(default_factory=list)  # raw text of the commands applied
    changes_global: bool = False
    redacted: bool = False


def _latest_user(messages: list[dict[str, Any]]) -> int:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            return i
    return -1


def _empty(content: Any) -> bool:
    return content == "" or content == [] or content is None


def prepare(
    request: dict[str, Any],
    raw: bytes,
    session: Session,
    runtime: RuntimeConfig,
    catalog: ModelCatalog,
    key_counts: dict[str, int],
    prefix: str,
    redactor: Redactor,
    banner: Callable[[Session], str],
    status: Callable[[Session], str],
) -> Prepared:
    interactive = runtime.interactive if session.interactive is None else session.interactive
    out = Prepared(request, session, interactive)
    # Cheap exits first: most requests carry neither a key nor a command. Redaction comes first, so a
    # key pasted into a command argument is neither stored, forwarded (e.g. as `project`) nor echoed.
    if runtime.redact and redactor.active and redactor.contains_secret(raw.decode("utf-8", errors="replace")):
        out.request = redactor.redact_json(out.request)
        out.redacted = True
    if prefix.encode() in raw:
        _handle_commands(out, runtime, catalog, key_counts, prefix, banner, status)
    # Interactive sessions get the banner on their first reply, commands or not.
    if out.interactive and not session.greeted and out.reply_text is None:
        session.greeted = True
        out.prelude = banner(session) + ("\n" + out.prelude if out.prelude else "")
    return out


def _handle_commands(
    out: Prepared,
    runtime: RuntimeConfig,
    catalog: ModelCatalog,
    key_counts: dict[str, int],
    prefix: str,
    banner: Callable[[Session], str],
    status: Callable[[Session], str],
) -> None:
    messages = out.request["messages"]
    latest = _latest_user(messages)
    # Commands run only when the latest user message is the newest message: a client re-sending
    # history (or an agent loop continuing after tool calls) must not run them again.
    live = latest == len(messages) - 1
    found: tuple[Any, ...] = ()
    errors: tuple[Any, ...] = ()
    new_messages = list(messages)
    for i, msg in enumerate(messages):
        if msg.get("role") != "user":
            continue
        is_live = live and i == latest
        content, cmds, errs = scan_content(
            msg.get("content"), prefix, known=COMMANDS.__contains__, strip_unknown=is_live and out.interactive
        )
        if content is not msg.get("content"):
            new_messages[i] = {**msg, "content": content}
        if is_live:
            found, errors = cmds, errs
    if not found and not errors:
        if new_messages != messages:
            out.request = {**out.request, "messages": new_messages}
        return
    ctx = CommandContext(out.session, runtime, catalog, key_counts, prefix, banner, status, runtime.routes)
    run = run_commands(ctx, found, errors)
    if run.errors:
        out.reply_text = "\n".join(run.errors)
        return
    out.commands = [c.raw for c in found]
    out.changes_global = run.changes_global
    # A command may have switched interactive mode for this very reply.
    s = out.session
    out.interactive = runtime.interactive if s.interactive is None else s.interactive
    greet = run.show_banner or (out.interactive and not s.greeted)
    parts = ([banner(s)] if greet else []) + run.messages
    if greet:
        s.greeted = True
    text = "\n".join(p for p in parts if p)
    if _empty(new_messages[latest].get("content")):
        out.reply_text = text or "ok"
        return
    out.request = {**out.request, "messages": new_messages}
    if out.interactive:
        out.prelude = text

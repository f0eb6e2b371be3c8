"""Everything the proxy does to a chat request before it leaves: session, commands, redaction.

Pure Python, and it changes no state: the result says either "answer this yourself" (command-only
messages, command errors) or "forward this request", with the text to show before the model's reply in
interactive mode, and the change set (commands, the first greeting) for the pipeline to apply. Preludes
shown earlier never go upstream again, and none is shown where the client parses the answer (prelude.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from addons.conversation.changeset import ChangeSet, CommandContext
from addons.conversation.commands import COMMANDS, run_commands
from addons.conversation.parser import scan_content
from addons.conversation.prelude import exact_answer_wanted, mark, without_preludes
from addons.routing.catalog import ModelCatalog
from addons.security.redaction import Redactor
from addons.stores.base import RuntimeConfig, Session


@dataclass(slots=True)
class Prepared:
    request: dict[str, Any]
    session: Session  # as it is once `changes` are applied
    runtime: RuntimeConfig  # likewise
    interactive: bool
    reply_text: str | None = None  # set: the proxy answers this itself, no backend call
    prelude: str = ""  # interactive: shown before the model's reply
    commands: list[str] = field(default_factory=list)  # raw text of the commands applied
    changes: ChangeSet = field(default_factory=ChangeSet)
    redacted: bool = False


def _latest_user(messages: list[dict[str, Any]]) -> int:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            return i
    return -1


def _empty(content: Any) -> bool:
    return content == "" or content == [] or content is None


async def prepare(
    request: dict[str, Any],
    raw: bytes,
    session: Session,
    runtime: RuntimeConfig,
    catalog: ModelCatalog,
    key_counts: dict[str, int],
    prefix: str,
    redactor: Redactor,
    banner: Callable[[Session, RuntimeConfig], str],
    status: Callable[[Session], Awaitable[str]],
    *,
    commands: str = "all",
    usage: Callable[[Session], Awaitable[str]] | None = None,
) -> Prepared:
    """`commands` is the setting of that name: "all", "session" (nothing that changes other sessions or
    the routes) or "off" (the text goes to the model as it is). `usage` makes `!/usage`'s text."""
    interactive = runtime.interactive if session.interactive is None else session.interactive
    out = Prepared(without_preludes(request), session, runtime, interactive)
    quiet = exact_answer_wanted(request)
    # Cheap exits first: most requests carry neither a key nor a command. Redaction comes first, so a
    # key pasted into a command argument is neither stored, forwarded (e.g. as `project`) nor echoed.
    # Decided on decoded text: JSON may spell a key's characters as escapes (\\u002d).
    if runtime.redact and redactor.body_holds_secret(raw):
        out.request = redactor.redact_json(out.request)
        out.redacted = True
    if commands != "off" and prefix.encode() in raw:
        ctx = CommandContext(
            session, runtime, catalog, key_counts, prefix, banner, status, commands == "all", usage=usage
        )
        await _handle_commands(out, ctx, quiet)
    # Interactive sessions get the banner on their first reply, commands or not; a reply the client
    # parses shows nothing, and the banner waits for a later one.
    if out.interactive and not quiet and not out.session.greeted and out.reply_text is None:
        _greeted(out)
        out.prelude = banner(out.session, out.runtime) + ("\n" + out.prelude if out.prelude else "")
    out.prelude = mark(out.prelude)
    return out


def _greeted(out: Prepared) -> None:
    out.changes.session["greeted"] = True
    out.session = out.changes.on_session(out.session)


async def _handle_commands(out: Prepared, ctx: CommandContext, quiet: bool) -> None:
    prefix = ctx.prefix
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
    run = await run_commands(ctx, found, errors)
    if run.errors:
        out.reply_text = "\n".join(run.errors)
        return
    out.commands = [c.raw for c in found]
    changes = out.changes = run.changes
    out.session, out.runtime = changes.on_session(out.session), changes.on_runtime(out.runtime)
    # A command may have switched interactive mode for this very reply.
    s = out.session
    out.interactive = out.runtime.interactive if s.interactive is None else s.interactive
    own_reply = _empty(new_messages[latest].get("content"))  # nothing left for the model
    if not own_reply:
        out.request = {**out.request, "messages": new_messages}
        if not out.interactive or quiet:
            return  # nothing is shown before the model's reply
    greet = changes.show_banner or (out.interactive and not s.greeted)
    parts = ([ctx.banner(s, out.runtime)] if greet else []) + changes.messages
    if greet:
        _greeted(out)
    text = "\n".join(p for p in parts if p)
    if own_reply:
        out.reply_text = text or "ok"
    else:
        out.prelude = text

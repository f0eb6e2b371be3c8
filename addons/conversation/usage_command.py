"""`!/usage`: what this session, its project and today (UTC) used and cost."""

from __future__ import annotations

from addons.conversation.changeset import ChangeSet, CommandContext, CommandError, change
from addons.conversation.parser import Command


async def cmd_usage(ctx: CommandContext, cmd: Command) -> ChangeSet:
    if cmd.positional or cmd.args:
        raise CommandError("takes no arguments")
    if ctx.usage is None:
        raise CommandError("this proxy keeps no usage")
    return change(await ctx.usage(ctx.session))

"""What guards one call: the settings, the session's own switch, the request's tools; and what the
guards say to the model, the user and the client when they act."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from addons.guards.repetition import Loop, RepetitionLimits
from addons.guards.tool_loop import ToolLoop, find_tool_loop
from addons.guards.tool_repair import ToolSchemas
from addons.records import CallRecord
from addons.settings import Settings
from addons.stores.base import Session

# Trip names on CallRecord.guards (flow comment, history, metrics).
REPETITION = "repetition"
TOOL_LOOP_STEERED = "tool_loop_steered"
TOOL_LOOP_REFUSED = "tool_loop_refused"


@dataclass(frozen=True, slots=True)
class CallGuards:
    loop: bool  # the loop guards are on for this call (the session's switch, else the setting)
    limits: RepetitionLimits
    tool_loop_repeats: int
    tools: ToolSchemas | None  # None: no repair (switched off, or the request has no tools)
    prefix: str  # the in-chat command prefix, for the hints

    @classmethod
    def of(
        cls, settings: Settings, session: Session, request: dict[str, Any], record: CallRecord
    ) -> CallGuards:
        window = max(settings.repetition_window, settings.repetition_min_chars)
        return cls(
            loop=settings.loop_guard if session.loop_guard is None else session.loop_guard,
            limits=RepetitionLimits(settings.repetition_repeats, settings.repetition_min_chars, window),
            tool_loop_repeats=settings.tool_loop_repeats,
            tools=ToolSchemas.of(request, record) if settings.tool_call_repair else None,
            prefix=settings.command_prefix,
        )

    def tool_loop(self, request: dict[str, Any]) -> ToolLoop | None:
        return find_tool_loop(request.get("messages"), self.tool_loop_repeats) if self.loop else None

    def steering_note(self, loop: ToolLoop) -> str:
        """Appended to the tool result the model gets: what it should do instead."""
        return (
            f"[llm-intercept loop guard: {loop.call()} has now been called {loop.times} times in a row with "
            "the same arguments and returned this same result every time. Calling it again will return it "
            "again. Do something different: change the arguments, use another tool, or stop and tell the "
            "user what is blocking you.]"
        )

    def refusal(self, loop: ToolLoop) -> str:
        """The error the client gets when the model calls it once more all the same."""
        return (
            f"llm-intercept loop guard: the agent called {loop.call()} {loop.times} times in a row with the "
            f"same arguments and got the same result each time; the model was told so after "
            f"{self.tool_loop_repeats} and called it again, so this request was refused without calling "
            f"any model. Change the approach, or switch the guard off for this session with "
            f"{self.prefix}set(loop-guard=off)."
        )

    def cut_note(self, loop: Loop, reasoning: bool) -> str:
        """The end of an answer the repetition guard cut."""
        what = "its reasoning was" if reasoning else "it was"
        return (
            f"\n\n[llm-intercept: output stopped because {what} repeating itself (the same "
            f"{loop.block}-character block {loop.times} times in a row). Ask again, or send "
            f"{self.prefix}set(loop-guard=off) to let it run.]"
        )


def status_line(settings: Settings, session: Session | None) -> str:
    """The guards as `!/status` shows them (for `session`, with its own switch)."""
    on = settings.loop_guard if session is None or session.loop_guard is None else session.loop_guard
    whose = "" if session is None or session.loop_guard is None else " (this session's choice)"
    return (
        f"loop guards: {'on' if on else 'off'}{whose}; repetition cut at a block repeated "
        f"{settings.repetition_repeats} times in a row over at least {settings.repetition_min_chars} "
        f"characters; a note at {settings.tool_loop_repeats} identical tool calls in a row, refused after; "
        f"tool-call repair: {'on' if settings.tool_call_repair else 'off'}"
    )

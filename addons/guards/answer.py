"""The guards on a whole (non-streamed) answer, a chat.completion, changed in place.

Tool-call arguments are repaired as a stream's are at the end of each call. Content that loops is cut
where a stream of it would have been cut, with the same note, so an answer reads the same streamed or
not (the provider has already written, and billed, the rest). Reasoning is left whole: the answer after
it is there and is what the client wants.
"""

from __future__ import annotations

import logging
from typing import Any

from addons.guards.call import REPETITION, CallGuards
from addons.guards.repetition import first_loop
from addons.records import CallRecord

log = logging.getLogger(__name__)


def guard_answer(result: dict[str, Any], guards: CallGuards | None, record: CallRecord) -> bool:
    """Whether the answer changed."""
    changed = False
    if guards is None:
        return changed
    for choice in result.get("choices") or []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        if guards.tools is not None:
            for call in message.get("tool_calls") or []:
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                    fixed = guards.tools.fixed(str(fn.get("name")), fn["arguments"])
                    if fixed is not None:
                        fn["arguments"], changed = fixed, True
        content = message.get("content")
        if guards.loop and isinstance(content, str) and (found := first_loop(content, guards.limits)):
            loop, end = found
            message["content"] = content[:end] + guards.cut_note(loop, reasoning=False)
            if not message.get("tool_calls"):
                choice["finish_reason"] = "stop"
            record.guards.append(REPETITION)
            log.warning(
                "session %s: answer cut, the model was repeating itself (%d-character block %d times)",
                record.session, loop.block, loop.times,
            )  # fmt: skip
            changed = True
    return changed

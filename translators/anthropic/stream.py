"""Internal chat.completion.chunk SSE -> Anthropic Messages stream events.

Events: `message_start` at the first upstream chunk, then content blocks (blocks.py), then, at
`[DONE]` or the end of the stream, `message_delta` (stop reason, usage) and `message_stop`. The
message_delta waits for the end because the usage chunk follows the finish_reason chunk.

Failures end the stream with one `event: error` and nothing after it, as Anthropic does: an upstream
error event, an undecodable chunk, a stream that ends (or says `[DONE]`) without a finish_reason (never
a silent cut, never a made-up end_turn), or a bug here (feed() and finish() never raise).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from translators import json_codec
from translators.anthropic.answer import (
    answer_text,
    first_choice,
    matched_stop,
    message_id,
    stop_reason,
    thought_text,
    usage,
)
from translators.anthropic.blocks import BlockWriter, StreamShapeError
from translators.anthropic.errors import stream_error
from translators.anthropic.events import encode_event
from translators.sse import SSEDecoder, SSEEvent

log = logging.getLogger(__name__)

EARLY_END = "upstream stream ended early"


class MessagesStream:
    """Feed upstream bytes as they come (any split), get Anthropic SSE events, one bytes per event.

    `input_tokens` (optional) is what message_start reports before the upstream's usage is known, e.g. a
    local estimate; message_delta always carries the upstream's own counts.
    """

    def __init__(
        self, model: str, stop_sequences: list[str], message_id: str | None = None, *, input_tokens: int = 0
    ) -> None:
        self._model = model
        self._stops = list(stop_sequences)
        self._id = message_id
        self._input_tokens = input_tokens
        self._decoder = SSEDecoder()
        self._blocks = BlockWriter()
        self._started = False
        self._finish: str | None = None
        self._matched: str | None = None
        self._usage: Any = None
        self._state = "open"  # open -> done (message_stop or error sent)

    @property
    def failed(self) -> bool:
        """True once an error event was sent."""
        return self._state == "failed"

    def feed(self, data: bytes) -> list[bytes]:
        if self._state != "open":
            return []
        try:
            return self._events(self._decoder.feed(data))
        except Exception as exc:  # the client must get an error event, whatever broke
            return self._crash(exc)

    def finish(self) -> list[bytes]:
        if self._state != "open":
            return []
        try:
            out = self._events(self._decoder.finish(), at_eof=True)
            return out if self._state != "open" else [*out, *self._end()]
        except Exception as exc:
            return self._crash(exc)

    # -- internals ---------------------------------------------------------------------------------

    def _crash(self, exc: Exception) -> list[bytes]:
        if not isinstance(exc, StreamShapeError):
            log.exception("Anthropic stream rendering failed")
        return self._fail(f"could not render the upstream stream: {exc}")

    def _fail(self, error: str | dict[str, Any]) -> list[bytes]:
        """Our own failures are api_error; an upstream error object keeps its own type."""
        self._state = "failed"
        return [stream_error({"message": error, "type": "api_error"} if isinstance(error, str) else error)]

    def _events(self, events: Iterable[SSEEvent], *, at_eof: bool = False) -> list[bytes]:
        out: list[bytes] = []
        for ev in events:
            out.extend(self._event(ev.data.strip(), at_eof))
            if self._state != "open":
                break
        return out

    def _event(self, data: str, at_eof: bool) -> list[bytes]:
        if not data:
            return []
        if data == "[DONE]":
            return self._end()
        try:
            obj = json_codec.loads(data)
        except (json_codec.JSONDecodeError, RecursionError):
            if at_eof:  # an event without its blank line at the end: the connection was cut mid-event
                return self._fail(EARLY_END)
            return self._fail(f"the upstream sent an undecodable stream event: {data[:200]}")
        if not isinstance(obj, dict):
            return self._fail("the upstream sent a stream event that is not an object")
        if obj.get("error") is not None:
            err = obj["error"] if isinstance(obj["error"], dict) else {"message": str(obj["error"])}
            return self._fail(err)
        return self._chunk(obj)

    def _chunk(self, obj: dict[str, Any]) -> list[bytes]:
        out = self._start(obj.get("id"))
        if obj.get("usage") is not None:
            self._usage = obj["usage"]
        choice = first_choice(obj.get("choices"))
        if not choice:
            return out
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        out.extend(self._delta(delta))
        finish = choice.get("finish_reason")
        if finish == "error":
            return [*out, *self._fail("the upstream reported an error and ended the answer")]
        if isinstance(finish, str) and finish:
            self._finish = finish
            self._matched = matched_stop(choice, self._stops)
        return out

    def _delta(self, delta: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        thought = thought_text(delta)
        if thought:
            out.extend(self._blocks.thinking(thought))
        signature = delta.get("reasoning_signature")
        if isinstance(signature, str) and signature:
            out.extend(self._blocks.signature(signature))
        text = answer_text(delta)
        if text:
            out.extend(self._blocks.text(text))
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            if isinstance(call, dict):
                out.extend(self._blocks.tool_call(call))
        return out

    def _start(self, chunk_id: Any) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        self._id = self._id or message_id(chunk_id)
        opening = usage(None, self._input_tokens)
        opening.pop("output_tokens_details", None)
        message = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": opening,
        }
        return [encode_event("message_start", {"message": message})]

    def _end(self) -> list[bytes]:
        if self._finish is None:
            return self._fail(EARLY_END)
        out = [*self._start(None), *self._blocks.close()]
        reason, sequence = stop_reason(self._finish, self._blocks.tool_blocks > 0, self._matched)
        delta = {"stop_reason": reason, "stop_sequence": sequence}
        closing = usage(self._usage, self._input_tokens)
        out.append(encode_event("message_delta", {"delta": delta, "usage": closing}))
        out.append(encode_event("message_stop", {}))
        self._state = "done"
        return out


def stream_of(completion: dict[str, Any], model: str, stop_sequences: list[str]) -> bytes:
    """The whole event stream for a complete chat.completion (the proxy's own answers, streamed)."""
    choice = first_choice(completion.get("choices"))
    msg = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    delta = {k: v for k, v in msg.items() if k != "tool_calls"}
    calls = msg.get("tool_calls")
    if isinstance(calls, list):
        delta["tool_calls"] = [{**c, "index": i} for i, c in enumerate(calls) if isinstance(c, dict)]
    finished = {k: v for k, v in choice.items() if k != "message"}  # keeps native_finish_reason & co.
    finished.update(index=0, delta=delta, finish_reason=choice.get("finish_reason") or "stop")
    chunk = {"id": completion.get("id"), "choices": [finished], "usage": completion.get("usage")}
    stream = MessagesStream(model, stop_sequences)
    return b"".join([*stream._chunk(chunk), *stream._end()])

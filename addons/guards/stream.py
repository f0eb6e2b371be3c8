"""The guards on a stream: a StreamTranslator around the backend's, so that every dialect gets them (each
front-end renders from this internal chat chunk stream).

- Repetition: the text of each content (and reasoning) delta goes to a RepetitionWatch. When the end of
  the answer has become a loop, the event that showed it still goes out, then a content delta with a
  note, a `stop` finish and [DONE]; `cut` tells the relay to stop reading (the provider stops generating,
  and billing, when the connection closes). `stop`, not `length`: agents continue a `length` answer,
  which would only resume the loop.
- Tool-call repair: a call's argument pieces are held back and sent as one delta at the end of the call
  (the next call starting, the finish, an error or the end of the stream), repaired when they are not
  valid JSON and the repair fits the tool's schema. Its id and name go out at once. Arguments that
  arrive whole and valid (Gemini sends calls whole) pass as they came.

Per piece: three bytes searches decide whether it can carry text or tool calls; a plain text delta (the
bulk of a stream) has its text read by bytes searches too; only other events are parsed (orjson), and only
events that change are encoded again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from addons.backends.base import StreamTranslator
from addons.guards.call import REPETITION, CallGuards
from addons.guards.repetition import Loop, RepetitionWatch
from addons.records import CallRecord
from translators import json_codec
from translators.openai.synthetic import chunk, completion_id
from translators.sse import DONE, encode_data

log = logging.getLogger(__name__)

_EVENT_END = re.compile(rb"(\r\n\r\n|\n\n|\r\r)")
_CONTENT = b'"content":"'
_NO_FINISH = b'"finish_reason":null'


@dataclass(slots=True)
class _Call:
    name: str = ""
    pieces: list[str] = field(default_factory=list)
    whole: bool = False  # its arguments came whole and valid, and passed as they were


class GuardedStream:
    __slots__ = ("_calls", "_head", "_open", "cut", "guards", "inner", "record", "watches")

    def __init__(self, inner: StreamTranslator, guards: CallGuards, record: CallRecord) -> None:
        self.inner = inner
        self.guards = guards
        self.record = record
        # Content and reasoning each loop on their own.
        limits = guards.limits
        self.watches = (RepetitionWatch(limits), RepetitionWatch(limits)) if guards.loop else None
        self.cut = False
        self._calls: dict[int, _Call] = {}
        self._open: int | None = None  # the tool call whose arguments are being held
        self._head: tuple[str, str, int] | None = None  # id, model, created: for the chunks added here

    def feed(self, data: bytes) -> list[bytes]:
        return self._screen(self.inner.feed(data))

    def finish(self) -> list[bytes]:
        out = self._screen(self.inner.finish())
        return out if self.cut else [*out, *self._release()]

    def _screen(self, pieces: list[bytes]) -> list[bytes]:
        if self.cut:
            return []
        out = []
        for piece in pieces:
            if self._open is None and not self._carries(piece):
                out.append(piece)
                continue
            text = self._plain_text(piece)
            if text is not None:  # the bulk of a stream: a text delta, watched without parsing it
                loop = self.watches[0].feed(text) if self.watches is not None and text else None
                out.extend([piece] if loop is None else self._cut_at(piece, loop))
                if self.cut:
                    break
                continue
            if screened := self._piece(piece):
                out.append(screened)
            if self.cut:
                break
        return out

    def _carries(self, piece: bytes) -> bool:
        """Whether `piece` may hold what a guard watches (bytes searches; only then is it parsed)."""
        if self.watches is not None and (b'"content"' in piece or b'"reasoning' in piece):
            return True
        return self.guards.tools is not None and b'"tool_calls"' in piece

    def _plain_text(self, piece: bytes) -> str | None:
        """The text of a piece that is one event, a text delta of the first choice and nothing else a
        guard acts on (no finish, tool calls or reasoning), read with bytes searches; None: parse it. Keys
        found this way are real keys: inside a JSON string every quote is escaped."""
        if self._head is None or self._open is not None or not piece.startswith(b"data:"):
            return None
        if piece.find(b"\n\n") != len(piece) - 2:
            return None
        if b'"tool_calls"' in piece or b'"reasoning' in piece or _NO_FINISH not in piece:
            return None
        i = piece.find(_CONTENT)
        if i < 0 or piece.find(_CONTENT, i + 1) >= 0 or b'"index":0' not in piece:
            return None
        start = i + len(_CONTENT)
        end = piece.find(b'"', start)
        while end > 0 and _escaped(piece, end):
            end = piece.find(b'"', end + 1)
        if end < 0:
            return None
        raw = piece[start:end]
        try:
            text = json_codec.loads(b'"' + raw + b'"') if b"\\" in raw else raw.decode()
        except (json_codec.JSONDecodeError, UnicodeDecodeError):
            return None
        return text if isinstance(text, str) else None

    def _cut_at(self, piece: bytes, loop: Loop) -> list[bytes]:
        """The text event that completed a loop, then the cut."""
        obj = json_codec.loads(piece[5:-2].strip())
        return [*_rest(obj, obj["choices"][0]["delta"]), *self._cut(loop, False)]

    def _piece(self, piece: bytes) -> bytes:
        if piece.startswith(b"data:") and piece.find(b"\n\n") == len(piece) - 2:  # one event: the usual piece
            new = self._event(piece[:-2], piece[5:-2].strip())
            return piece if new is None else b"".join(new)
        parts = _EVENT_END.split(piece)  # event, separator, event, separator, ..., rest
        out: list[bytes] = []
        changed = False
        for k in range(0, len(parts), 2):
            event, end = parts[k], parts[k + 1] if k + 1 < len(parts) else b""
            data = _data(event)
            new = None if data is None else self._event(event, data)
            if new is None:
                out.append(event + end)
            else:
                out.extend(new)
                changed = True
            if self.cut:
                break
        return b"".join(out) if changed else piece

    def _event(self, event: bytes, data: bytes) -> list[bytes] | None:
        """The events that replace this one (its `data`), or None to keep it as it is."""
        if data.startswith(b"[DONE]"):
            return [*self._release(), event + b"\n\n"] if self._open is not None else None
        try:
            obj = json_codec.loads(data)
        except (json_codec.JSONDecodeError, UnicodeDecodeError):
            return None
        if not isinstance(obj, dict):
            return None
        if self._head is None and isinstance(obj.get("id"), str):
            created = obj.get("created")
            self._head = (obj["id"], str(obj.get("model") or ""), created if isinstance(created, int) else 0)
        choices = obj.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict):  # an error or usage event: what is held goes out before it
            return [*self._release(), event + b"\n\n"] if self._open is not None else None
        if choice.get("index", 0) != 0:
            return None  # guards watch the first choice (clients asking for several are no agents)
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        before, held = self._hold(delta) if self.guards.tools is not None else ([], False)
        loop, reasoning = self._watch(delta)
        if choice.get("finish_reason") is not None:
            loop = None  # the answer ends here anyway: nothing left to stop
        finish = choice.get("finish_reason") is not None and self._open is not None
        if not (before or held or loop or finish):
            return None
        out = before + (self._finished(obj, choice, delta) if finish else _rest(obj, delta))
        return out + self._cut(loop, reasoning) if loop is not None else out

    def _hold(self, delta: dict[str, Any]) -> tuple[list[bytes], bool]:
        """Takes the argument pieces out of the delta's tool calls; (what goes out before this event: the
        end of a previous call, whether the delta changed)."""
        calls = delta.get("tool_calls")
        if not isinstance(calls, list):
            return [], False
        before: list[bytes] = []
        kept: list[Any] = []
        changed = False
        for tc in calls:
            fn = tc.get("function") if isinstance(tc, dict) else None
            if not isinstance(fn, dict) or not isinstance(tc.get("index"), int):
                kept.append(tc)
                continue
            i = tc["index"]
            if self._open is not None and i != self._open:
                before += self._release()
            call = self._calls.setdefault(i, _Call())
            call.name += fn["name"] if isinstance(fn.get("name"), str) else ""
            args = fn.get("arguments")
            if isinstance(args, str) and args and not call.pieces and _whole(args):
                call.whole = True
            elif isinstance(args, str) and args and not call.whole:
                call.pieces.append(args)
                changed = True
                if set(tc) == {"index", "function"} and set(fn) == {"arguments"}:
                    continue  # nothing but arguments: the event loses this entry
                tc = {**tc, "function": {**fn, "arguments": ""}}
            if not call.whole:
                self._open = i
            kept.append(tc)
        if changed:
            if kept:
                delta["tool_calls"] = kept
            else:
                del delta["tool_calls"]
        return before, changed

    def _release(self) -> list[bytes]:
        """The held arguments of the open call, repaired if they need and fit it, as one delta."""
        if self._open is None:
            return []
        i, self._open = self._open, None
        call = self._calls[i]
        text, call.pieces = "".join(call.pieces), []
        assert self.guards.tools is not None  # nothing is held without them
        text = self.guards.tools.fixed(call.name, text) or text
        if not text:
            return []
        return [self._chunk({"tool_calls": [{"index": i, "function": {"arguments": text}}]})]

    def _watch(self, delta: dict[str, Any]) -> tuple[Loop | None, bool]:
        """(the loop this delta's text completes, whether it is in the reasoning)."""
        if self.watches is None:
            return None, False
        text = delta.get("content")
        if isinstance(text, str) and text and (loop := self.watches[0].feed(text)) is not None:
            return loop, False
        thought = delta.get("reasoning_content")
        thought = thought if isinstance(thought, str) else delta.get("reasoning")
        if isinstance(thought, str) and thought and (loop := self.watches[1].feed(thought)) is not None:
            return loop, True
        return None, False

    def _finished(self, obj: dict[str, Any], choice: dict[str, Any], delta: dict[str, Any]) -> list[bytes]:
        """A finish while arguments are held: this event's delta, then the arguments, then the finish."""
        finish = {**obj, "choices": [{**choice, "delta": {}}]}
        head = {k: v for k, v in obj.items() if k != "usage"}
        head["choices"] = [{**choice, "finish_reason": None}]
        head["choices"][0].pop("native_finish_reason", None)
        return [*_rest(head, delta), *self._release(), encode_data(finish)]

    def _cut(self, loop: Loop, reasoning: bool) -> list[bytes]:
        self.cut = True
        self.record.guards.append(REPETITION)
        log.warning(
            "session %s: output cut, the model was repeating itself (%d-character block %d times)",
            self.record.session, loop.block, loop.times,
        )  # fmt: skip
        note = self._chunk({"content": self.guards.cut_note(loop, reasoning)})
        return [*self._release(), note, self._chunk({}, "stop"), DONE]

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        cid, model, created = self._head or (completion_id(), "", 0)
        return encode_data(chunk(cid, model, created, delta, finish_reason))


def guarded(translator: StreamTranslator, guards: CallGuards | None, record: CallRecord) -> StreamTranslator:
    """The translator with the guards this call has on it, or the translator itself when it has none."""
    if guards is None or (not guards.loop and guards.tools is None):
        return translator
    return GuardedStream(translator, guards, record)


def read_until_cut(
    chunks: AsyncIterator[bytes] | None, translator: StreamTranslator
) -> AsyncIterator[bytes] | None:
    """The upstream chunks, up to where a guard of `translator` ended the answer: the relay then stops
    reading and closes the upstream (the provider stops generating, and billing)."""
    if chunks is None or not isinstance(translator, GuardedStream):
        return chunks
    return _until_cut(chunks, translator)


async def _until_cut(chunks: AsyncIterator[bytes], guard: GuardedStream) -> AsyncIterator[bytes]:
    while not guard.cut:
        try:
            data = await anext(chunks)
        except StopAsyncIteration:
            return
        yield data


def _rest(obj: dict[str, Any], delta: dict[str, Any]) -> list[bytes]:
    """The event once its held arguments are out: nothing if nothing else is left in it."""
    empty = not any(v not in (None, "", [], {}) for v in delta.values())
    if empty and obj["choices"][0].get("finish_reason") is None and "usage" not in obj:
        return []
    return [encode_data(obj)]


def _escaped(data: bytes, at: int) -> bool:
    """Whether the quote at `at` is escaped (an odd run of backslashes before it)."""
    run = 0
    while at - run - 1 >= 0 and data[at - run - 1] == 0x5C:
        run += 1
    return run % 2 == 1


def _data(event: bytes) -> bytes | None:
    for line in event.splitlines():
        if line.startswith(b"data:"):
            return line[5:].strip()
    return None


def _whole(args: str) -> bool:
    """Complete, valid JSON object arguments (a call sent whole)."""
    if not args.lstrip().startswith("{"):
        return False
    try:
        return isinstance(json_codec.loads(args), dict)
    except (json_codec.JSONDecodeError, RecursionError):
        return False

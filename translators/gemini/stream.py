"""Gemini `streamGenerateContent?alt=sse` bytes -> OpenAI chat.completion.chunk SSE bytes.

After an error event nothing more is sent (no `[DONE]`), as OpenAI itself does; the openai SDK raises on
the error event. A stream that ends with no valid event, or before any finishReason (the upstream
connection was cut), ends with an error event too, never with a fake "stop".
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from translators import json_codec
from translators.gemini.errors import excerpt, gemini_error_to_openai
from translators.gemini.response import (
    IdFactory,
    Kept,
    finish_reason,
    random_id,
    read_candidate,
    unusual_finish,
    usage_from_metadata,
)
from translators.openai.synthetic import chunk, sse_error_event, usage_chunk
from translators.sse import DONE, SSEDecoder, SSEEvent, encode_data

log = logging.getLogger(__name__)

_Item = TypeVar("_Item")


@dataclass(slots=True)
class _ChoiceState:
    role_sent: bool = False
    tool_calls: int = 0  # also the next tool call index: indexes are cumulative over the stream
    finish: str | None = None
    native: str | None = None  # Gemini's own finishReason when unusual (response.unusual_finish)


class GeminiStreamTranslator:
    """Gemini `streamGenerateContent?alt=sse` bytes -> OpenAI chat.completion.chunk SSE bytes.

    Each Gemini event is translated as soon as it is complete. finish_reason chunks, the usage chunk
    (always sent: the proxy accounts every call; what a client sees of it is its front-end's choice)
    and `[DONE]` are held for finish(): Gemini may send a functionCall and then STOP in a later event,
    and the reason must still be "tool_calls". feed() and finish() never raise; a failure becomes one
    OpenAI error event, after which the translator emits nothing more. What a tool call leaves for the
    signature store is in `kept` by the time feed() returns the chunk that hands out its id.
    """

    def __init__(
        self,
        *,
        model: str,
        id_factory: IdFactory | None = None,
        kept: Kept | None = None,
    ) -> None:
        self._model = model
        self._ids = id_factory or random_id
        self._kept = kept
        self._decoder = SSEDecoder()
        self._cid: str | None = None
        self._created = int(time.time())
        self._choices: dict[int, _ChoiceState] = {}
        self._usage: Any = None
        self._finish_seen = False
        self._state = "open"  # open -> closed (clean end) | failed (error event sent)

    @property
    def failed(self) -> bool:
        """True once an error event was emitted (the glue may want to log or count it)."""
        return self._state == "failed"

    def feed(self, data: bytes) -> list[bytes]:
        if self._state != "open":
            return []
        try:
            return self._until_closed(self._decoder.feed(data), self._event)
        except Exception as exc:  # the stream must go on with an error event, whatever broke
            log.exception("Gemini stream translation failed")
            return self._fail(f"could not translate the Gemini stream: {exc}")

    def finish(self) -> list[bytes]:
        if self._state != "open":
            return []
        try:
            out = self._until_closed(self._decoder.finish(), self._event)
            if self._state != "open":
                return out
            if self._cid is None:
                return [*out, *self._fail("Gemini closed the stream without sending any response")]
            if not self._finish_seen:
                return [
                    *out,
                    *self._fail(
                        "the Gemini stream ended before it finished; the upstream connection was cut off"
                    ),
                ]
            self._state = "closed"
            return [*out, *self._closing_chunks(self._cid)]
        except Exception as exc:
            log.exception("Gemini stream translation failed at the end of the stream")
            return self._fail(f"could not translate the Gemini stream: {exc}")

    # -- internals ---------------------------------------------------------------------------------

    def _closing_chunks(self, cid: str) -> list[bytes]:
        """The held finish_reason chunks, the usage chunk, and `[DONE]`."""
        out: list[bytes] = []
        for index in sorted(self._choices):
            st = self._choices[index]
            delta: dict[str, Any] = {}
            if not st.role_sent:
                delta = {"role": "assistant", "content": None if st.finish == "content_filter" else ""}
            reason = "tool_calls" if st.tool_calls else st.finish or "stop"
            closing = chunk(cid, self._model, self._created, delta, reason, index)
            if st.native:
                closing["choices"][0]["native_finish_reason"] = st.native
            out.append(encode_data(closing))
        usage = usage_from_metadata(self._usage)
        out.append(encode_data(usage_chunk(cid, self._model, self._created, usage)))
        out.append(DONE)
        return out

    def _fail(
        self, message: str, status: int = 502, code: str | None = "upstream_stream_error", **kw: Any
    ) -> list[bytes]:
        self._state = "failed"
        return [sse_error_event(message, status, code=code, **kw)]

    def _until_closed(self, items: Iterable[_Item], step: Callable[[_Item], list[bytes]]) -> list[bytes]:
        """Translates items in order; nothing after the one that ended the stream."""
        out: list[bytes] = []
        for item in items:
            out.extend(step(item))
            if self._state != "open":
                break
        return out

    def _event(self, ev: SSEEvent) -> list[bytes]:
        data = ev.data.strip()
        if not data or data == "[DONE]":
            return []
        try:
            obj = json_codec.loads(data)
        except json_codec.JSONDecodeError:
            return self._fail(f"Gemini sent an undecodable stream event: {excerpt(data)}")
        if isinstance(obj, list):  # the non-SSE stream form is a JSON array of responses
            return self._until_closed(obj, self._response)
        return self._response(obj)

    def _response(self, obj: Any) -> list[bytes]:
        if not isinstance(obj, dict):
            return self._fail(f"Gemini sent a stream event that is not an object: {excerpt(json.dumps(obj))}")
        if "error" in obj:
            return self._error(obj)

        if self._cid is None:
            rid = obj.get("responseId")
            self._cid = f"chatcmpl-{rid}" if isinstance(rid, str) and rid else self._ids("chatcmpl-")
        if isinstance(obj.get("usageMetadata"), dict):
            self._usage = obj["usageMetadata"]  # cumulative: the last one wins

        cands = obj.get("candidates")
        feedback = obj.get("promptFeedback")
        if not cands and isinstance(feedback, dict) and feedback.get("blockReason"):
            self._choices.setdefault(0, _ChoiceState()).finish = "content_filter"
            self._finish_seen = True
            return []

        out: list[bytes] = []
        for pos, cand in enumerate(cands if isinstance(cands, list) else []):
            if isinstance(cand, dict):
                out.extend(self._candidate(pos, cand, self._cid))
        return out

    def _error(self, obj: dict[str, Any]) -> list[bytes]:
        """A mid-stream Gemini error object -> one OpenAI error event with its status and code."""
        err = obj["error"] if isinstance(obj["error"], dict) else {}
        code = err.get("code")
        status = code if isinstance(code, int) and 400 <= code <= 599 else 502
        status, body, _ = gemini_error_to_openai(status, json.dumps(obj).encode("utf-8"))
        e = body["error"]
        return self._fail(e["message"], status, e["code"], type_=e["type"])

    def _candidate(self, pos: int, cand: dict[str, Any], cid: str) -> list[bytes]:
        """One candidate of an event -> at most one chunk; its finishReason is held for finish()."""
        index = cand.get("index") if isinstance(cand.get("index"), int) else pos
        st = self._choices.setdefault(index, _ChoiceState())
        parts = read_candidate(cand, self._ids, self._kept)
        delta: dict[str, Any] = {}
        text, thought = "".join(parts.texts), "".join(parts.thoughts)
        if text:
            delta["content"] = text
        if thought:
            delta["reasoning_content"] = thought
        if parts.calls:
            delta["tool_calls"] = [{"index": st.tool_calls + k, **call} for k, call in enumerate(parts.calls)]
            st.tool_calls += len(parts.calls)
        if cand.get("finishReason"):
            st.finish, st.native = finish_reason(cand["finishReason"]), unusual_finish(cand["finishReason"])
            self._finish_seen = True
        # A signature goes out as soon as its part arrives; a second one in the same event gets its own chunk.
        deltas = [delta, *({"reasoning_signature": sig} for sig in parts.signatures[1:])]
        if parts.signatures:
            delta["reasoning_signature"] = parts.signatures[0]
        if not delta:
            return []  # e.g. the trailing `text: ""` + finishReason event
        if not st.role_sent:
            deltas[0] = {"role": "assistant", "content": delta.pop("content", None), **delta}
            st.role_sent = True
        return [encode_data(chunk(cid, self._model, self._created, d, None, index)) for d in deltas]

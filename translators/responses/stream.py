"""Internal chat chunk SSE bytes -> Responses SSE events, as the bytes arrive.

Events are `event: <type>` + `data: <json>` with `sequence_number` counting from 0: response.created
and response.in_progress first; then each output item (reasoning, message, function_call or
custom_tool_call) from output_item.added through its deltas to output_item.done, one item open at a
time; last response.completed, response.incomplete (length, content filter) or response.failed.

- An error event, undecodable bytes, or a stream that stops before a finish_reason (the upstream was
  cut off) end with an `error` event and then response.failed. `[DONE]` counts as a clean end.
- A reasoning signature opens a reasoning item when nothing is open yet, goes on the reasoning item
  that is open or opens next, else on a reasoning item of its own at the end.
- A custom tool's input sits inside JSON arguments (`{"input": "..."}`): it is rendered whole when its
  item closes.
- Nothing is emitted after the terminal event, and feed()/finish() never raise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from translators import json_codec
from translators.responses.errors import response_error
from translators.responses.ids import IdFactory, random_id
from translators.responses.output import (
    Seal,
    call_item,
    envelope,
    message_item,
    reasoning_item,
    status_of,
    text_part,
    usage_of,
)
from translators.responses.request import ResponsesRequest
from translators.responses.tools import ToolRef
from translators.sse import DONE, SSEDecoder, SSEEvent, encode_data

log = logging.getLogger(__name__)

_PREFIXES = {"reasoning": "rs_", "message": "msg_", "call": "fc_"}


@dataclass(slots=True)
class _Item:
    kind: str  # reasoning | message | call
    index: int
    id: str
    text: list[str] = field(default_factory=list)  # summary, output text or call arguments
    summary_open: bool = False
    tool_index: int | None = None
    call_id: str = ""
    name: str = ""


class ResponsesStream:
    def __init__(
        self,
        req: ResponsesRequest,
        response_id: str,
        created_at: int,
        seal: Seal | None,
        custom_tools: Collection[str] | None = None,
        *,
        ids: IdFactory = random_id,
    ) -> None:
        self._req = req
        self._rid = response_id
        self._created = created_at
        self._seal = seal
        self._custom = frozenset(custom_tools) if custom_tools is not None else req.custom_tools
        self._ids = ids
        self._decoder = SSEDecoder()
        self._out: list[bytes] = []
        self._seq = 0
        self._started = False
        self._output: list[dict[str, Any]] = []  # closed items
        self._open: _Item | None = None
        self._calls: set[int] = set()
        self._signature: str | None = None
        self._signature_placed = False
        self._finish: str | None = None
        self._usage: Any = None
        self._response: dict[str, Any] | None = None
        self._state = "open"  # open -> closed | failed

    @property
    def response(self) -> dict[str, Any] | None:
        """The final response object, once the terminal event went out."""
        return self._response

    @property
    def failed(self) -> bool:
        return self._state == "failed"

    def feed(self, data: bytes) -> list[bytes]:
        if self._state == "open":
            self._guard(lambda: self._events(self._decoder.feed(data)))
        return self._drain()

    def finish(self) -> list[bytes]:
        if self._state == "open":
            self._guard(self._end)
        return self._drain()

    # -- driving -----------------------------------------------------------------------------------

    def _guard(self, step: Callable[[], None]) -> None:
        try:
            self._start()
            step()
        except Exception as exc:  # the client must get a terminal event, whatever broke
            log.exception("Responses stream rendering failed")
            self._fail({"message": f"could not render the answer stream: {exc}", "type": "api_error"})

    def _drain(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def _emit(self, kind: str, **fields: Any) -> None:
        payload = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        self._out.append(b"event: " + kind.encode() + b"\n" + encode_data(payload))

    def _start(self) -> None:
        if not self._started:
            self._started = True
            snapshot = envelope(self._req, self._rid, self._created, "in_progress", [])
            self._emit("response.created", response=snapshot)
            self._emit("response.in_progress", response=snapshot)

    def _events(self, events: list[SSEEvent]) -> None:
        for ev in events:
            if self._state != "open":
                return
            self._event(ev.data.strip())

    def _end(self) -> None:
        self._events(self._decoder.finish())
        if self._state == "open":
            if self._finish is None:
                self._fail({"message": "the upstream stream ended before it finished", "type": "api_error"})
            else:
                self._complete()

    def _event(self, data: str) -> None:
        if not data:
            return
        if data == "[DONE]":
            self._complete()
            return
        try:
            obj = json_codec.loads(data)
        except (ValueError, UnicodeDecodeError):
            obj = None
        if not isinstance(obj, dict):
            self._fail(
                {"message": f"the upstream sent an unreadable event: {data[:200]}", "type": "api_error"}
            )
            return
        if obj.get("error") is not None:
            self._fail(obj["error"])
            return
        if isinstance(obj.get("usage"), dict):
            self._usage = obj["usage"]
        for choice in obj.get("choices") or []:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._choice(choice)

    def _choice(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        signature = delta.get("reasoning_signature")
        if isinstance(signature, str) and signature and self._signature is None:
            self._signature = signature
            if self._open is None:
                self._current("reasoning")
        thought = delta.get("reasoning_content")
        thought = thought if isinstance(thought, str) else delta.get("reasoning")
        if isinstance(thought, str) and thought:
            self._reasoning(thought)
        if isinstance(delta.get("content"), str) and delta["content"]:
            self._text(delta["content"])
        for call in delta.get("tool_calls") or []:
            if isinstance(call, dict):
                self._call(call)
        if isinstance(choice.get("finish_reason"), str):
            self._finish = choice["finish_reason"]

    # -- items -------------------------------------------------------------------------------------

    def _current(self, kind: str) -> _Item:
        if self._open is not None and self._open.kind == kind:
            return self._open
        self._close()
        item = _Item(kind, len(self._output), self._ids(_PREFIXES[kind]))
        self._open = item
        self._emit("response.output_item.added", output_index=item.index, item=self._snapshot(item))
        if kind == "message":
            self._emit("response.content_part.added", **self._at(item), content_index=0, part=text_part(""))
        return item

    def _snapshot(self, item: _Item) -> dict[str, Any]:
        if item.kind == "reasoning":
            return reasoning_item(item.id, None, None, None)
        if item.kind == "message":
            return message_item(item.id, None, "in_progress")
        return call_item(item.id, item.call_id, self._ref(item.name), "", "in_progress")

    def _at(self, item: _Item) -> dict[str, Any]:
        return {"item_id": item.id, "output_index": item.index}

    def _ref(self, name: str) -> ToolRef:
        ref = self._req.names.ref(name)
        return ToolRef(ref.name, ref.namespace, name in self._custom)

    def _reasoning(self, text: str) -> None:
        item = self._current("reasoning")
        if not item.summary_open:
            item.summary_open = True
            part = {"type": "summary_text", "text": ""}
            self._emit("response.reasoning_summary_part.added", **self._at(item), summary_index=0, part=part)
        item.text.append(text)
        self._emit("response.reasoning_summary_text.delta", **self._at(item), summary_index=0, delta=text)

    def _text(self, text: str) -> None:
        item = self._current("message")
        item.text.append(text)
        self._emit("response.output_text.delta", **self._at(item), content_index=0, delta=text, logprobs=[])

    def _call(self, call: dict[str, Any]) -> None:
        index = call["index"] if isinstance(call.get("index"), int) else len(self._calls)
        fn = call.get("function") if isinstance(call.get("function"), dict) else {}
        item = self._open
        if index not in self._calls:
            self._calls.add(index)
            self._close()
            call_id = call.get("id") if isinstance(call.get("id"), str) and call["id"] else self._ids("call_")
            item = _Item("call", len(self._output), self._ids("fc_"), tool_index=index, call_id=call_id)
            item.name = fn.get("name") if isinstance(fn.get("name"), str) else ""
            self._open = item
            self._emit("response.output_item.added", output_index=item.index, item=self._snapshot(item))
        elif item is None or item.tool_index != index:
            return  # a late piece of a call already closed: upstreams send each call whole or in order
        elif isinstance(fn.get("name"), str):
            item.name += fn["name"]
        arguments = fn.get("arguments")
        if isinstance(arguments, str) and arguments:
            item.text.append(arguments)
            if item.name not in self._custom:
                self._emit("response.function_call_arguments.delta", **self._at(item), delta=arguments)

    def _close(self) -> None:
        item, self._open = self._open, None
        if item is None:
            return
        text = "".join(item.text)
        if item.kind == "reasoning":
            if item.summary_open:
                self._emit(
                    "response.reasoning_summary_text.done", **self._at(item), summary_index=0, text=text
                )
                part = {"type": "summary_text", "text": text}
                self._emit(
                    "response.reasoning_summary_part.done", **self._at(item), summary_index=0, part=part
                )
            done = reasoning_item(item.id, text, self._take_signature(), self._seal)
        elif item.kind == "message":
            self._emit("response.output_text.done", **self._at(item), content_index=0, text=text, logprobs=[])
            self._emit("response.content_part.done", **self._at(item), content_index=0, part=text_part(text))
            done = message_item(item.id, text)
        else:
            done = call_item(item.id, item.call_id, self._ref(item.name), text)
            self._call_done(item, done)
        self._emit("response.output_item.done", output_index=item.index, item=done)
        self._output.append(done)

    def _call_done(self, item: _Item, done: dict[str, Any]) -> None:
        if done["type"] == "custom_tool_call":
            if done["input"]:
                self._emit("response.custom_tool_call_input.delta", **self._at(item), delta=done["input"])
            self._emit("response.custom_tool_call_input.done", **self._at(item), input=done["input"])
        else:
            self._emit("response.function_call_arguments.done", **self._at(item), arguments=done["arguments"])

    def _take_signature(self) -> str | None:
        if self._signature is None or self._signature_placed:
            return None
        self._signature_placed = True
        return self._signature

    # -- endings -----------------------------------------------------------------------------------

    def _complete(self) -> None:
        self._close()
        if self._signature is not None and not self._signature_placed:
            self._current("reasoning")  # the signature came while text was open: its own item
            self._close()
        status, incomplete = status_of(self._finish)
        self._response = envelope(
            self._req,
            self._rid,
            self._created,
            status,
            self._output,
            usage=usage_of(self._usage),
            incomplete_details=incomplete,
        )
        self._state = "closed"
        kind = "response.completed" if status == "completed" else "response.incomplete"
        self._emit(kind, response=self._response)

    def _fail(self, err: Any) -> None:
        error = response_error(err)
        param = err.get("param") if isinstance(err, dict) and isinstance(err.get("param"), str) else None
        self._emit("error", code=error["code"], message=error["message"], param=param)
        self._response = envelope(
            self._req,
            self._rid,
            self._created,
            "failed",
            self._output,
            error=error,
            usage=usage_of(self._usage),
        )
        self._state = "failed"
        self._emit("response.failed", response=self._response)


def completion_sse(completion: dict[str, Any]) -> bytes:
    """A whole internal answer as the chunk stream it amounts to: one chunk, then [DONE]."""
    if completion.get("error"):
        return encode_data({"error": completion["error"]})
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    msg = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    fields = ("reasoning_signature", "reasoning_content", "reasoning", "content")
    delta: dict[str, Any] = {k: msg[k] for k in fields if isinstance(msg.get(k), str) and msg[k]}
    calls = [
        {**call, "index": k} for k, call in enumerate(msg.get("tool_calls") or []) if isinstance(call, dict)
    ]
    if calls:
        delta["tool_calls"] = calls
    chunk = {
        "choices": [{"index": 0, "delta": delta, "finish_reason": choice.get("finish_reason") or "stop"}],
        "usage": completion.get("usage"),
    }
    return encode_data(chunk) + DONE


def rendered(completion: dict[str, Any], stream: ResponsesStream) -> list[bytes]:
    """Every event of a whole answer; `stream.response` is then the final response object."""
    return stream.feed(completion_sse(completion)) + stream.finish()


def stream_of(
    completion: dict[str, Any],
    req: ResponsesRequest,
    response_id: str,
    created_at: int,
    seal: Seal | None,
    custom_tools: Collection[str] | None = None,
    *,
    ids: IdFactory = random_id,
) -> bytes:
    """Responses SSE bytes for a whole answer (the proxy's own replies, or a buffered upstream answer)."""
    return b"".join(
        rendered(completion, ResponsesStream(req, response_id, created_at, seal, custom_tools, ids=ids))
    )

"""Pieces of an internal chat answer -> Anthropic content block events, one block open at a time.

Blocks are indexed from 0 in order of appearance. A piece of another kind closes the open block and
starts its own (thinking, then text, then tool_use is the usual order; interleaved thinking after a tool
call simply starts a new thinking block). Each new tool call index starts a new tool_use block carrying
its id, name and `input: {}`; its arguments follow as input_json_delta pieces.

A thinking block's signature is sent as a signature_delta just before its content_block_stop, as
Anthropic does. A signature that arrives while no thinking block is open (the thoughts were not
returned) starts a thinking block with empty thinking, so the client still has it for the next turn.
One signature per thinking block: the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from translators.anthropic.answer import tool_use_id
from translators.anthropic.events import encode_event
from translators.anthropic.signatures import encode_signature


class StreamShapeError(ValueError):
    """The upstream stream has a shape Anthropic's block model cannot express."""


@dataclass(slots=True)
class _Block:
    index: int
    kind: str  # thinking | text | tool_use
    tool: int | None = None  # the chat tool call index a tool_use block renders
    signature: str | None = None


class BlockWriter:
    __slots__ = ("_count", "_done_tools", "_open", "tool_blocks")

    def __init__(self) -> None:
        self._count = 0
        self._open: _Block | None = None
        self._done_tools: set[int] = set()
        self.tool_blocks = 0

    def thinking(self, text: str) -> list[bytes]:
        out, block = self._ensure("thinking")
        return [*out, _delta(block, {"type": "thinking_delta", "thinking": text})]

    def signature(self, sig: str) -> list[bytes]:
        out, block = self._ensure("thinking")
        if block.signature is None:
            block.signature = sig
        return out

    def text(self, text: str) -> list[bytes]:
        out, block = self._ensure("text")
        return [*out, _delta(block, {"type": "text_delta", "text": text})]

    def tool_call(self, call: dict[str, Any]) -> list[bytes]:
        """One chat tool call delta (`index`, maybe `id` and `function.name`, argument text)."""
        fn = call.get("function") if isinstance(call.get("function"), dict) else {}
        index = call.get("index") if isinstance(call.get("index"), int) else self._current_tool()
        out: list[bytes] = []
        block = self._open
        if block is None or block.tool != index:
            if index in self._done_tools:
                raise StreamShapeError(f"the upstream went back to tool call {index} after starting another")
            call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else tool_use_id()
            name = fn.get("name") if isinstance(fn.get("name"), str) else ""
            out, block = self._start(
                "tool_use", {"type": "tool_use", "id": call_id, "name": name, "input": {}}
            )
            block.tool = index
            self.tool_blocks += 1
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            out.append(_delta(block, {"type": "input_json_delta", "partial_json": args}))
        return out

    def close(self) -> list[bytes]:
        block, self._open = self._open, None
        if block is None:
            return []
        out: list[bytes] = []
        if block.signature is not None:
            out.append(
                _delta(block, {"type": "signature_delta", "signature": encode_signature(block.signature)})
            )
        if block.tool is not None:
            self._done_tools.add(block.tool)
        out.append(encode_event("content_block_stop", {"index": block.index}))
        return out

    def _current_tool(self) -> int:
        """A tool call delta without an index continues the open tool call, or starts the next one."""
        if self._open is not None and self._open.tool is not None:
            return self._open.tool
        return max(self._done_tools, default=-1) + 1

    def _ensure(self, kind: str) -> tuple[list[bytes], _Block]:
        if self._open is not None and self._open.kind == kind:
            return [], self._open
        empty = {"thinking": {"thinking": "", "signature": ""}, "text": {"text": ""}}[kind]
        return self._start(kind, {"type": kind, **empty})

    def _start(self, kind: str, content_block: dict[str, Any]) -> tuple[list[bytes], _Block]:
        out = self.close()
        block = self._open = _Block(self._count, kind)
        self._count += 1
        out.append(
            encode_event("content_block_start", {"index": block.index, "content_block": content_block})
        )
        return out, block


def _delta(block: _Block, delta: dict[str, Any]) -> bytes:
    return encode_event("content_block_delta", {"index": block.index, "delta": delta})

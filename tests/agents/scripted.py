"""A stand-in for the CLIs' own providers (Anthropic Messages, OpenAI Responses) on 127.0.0.1, scripted
for the tool turn of tests/agents/clis.py: the first call asks for the tool, the call that carries its
result is answered with a text quoting it. With it the CLI plumbing (install, offline environment, tool
execution, output) is proven apart from the proxy, and every request the CLIs make is recorded.

Streams are minimal but complete in each dialect: what the CLIs were seen to consume.
"""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.agents.clis import BASH_INPUT, EXEC_INPUT
from tests.fakes.server import FakeServer, Recorded

QUOTE = "tool results: "


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


class ScriptedAgentServer(FakeServer):
    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle(self, h: BaseHTTPRequestHandler, rec: Recorded) -> None:
        path = rec.path.split("?")[0]
        if rec.method == "POST" and path == "/v1/messages":
            self.send_body(h, 200, self._messages(rec.json()), {"content-type": "text/event-stream"})
        elif rec.method == "POST" and path == "/v1/responses":
            self.send_body(h, 200, self._responses(rec.json()), {"content-type": "text/event-stream"})
        else:
            self.send_json(h, 404, {"error": {"type": "not_found_error", "message": f"no route {path}"}})

    # -- Anthropic Messages ---------------------------------------------------------------------------

    def _messages(self, body: dict[str, Any]) -> bytes:
        last = body["messages"][-1]
        blocks = last["content"] if isinstance(last["content"], list) else []
        results = [_text_of(b.get("content")) for b in blocks if b.get("type") == "tool_result"]
        if results:
            start: dict[str, Any] = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": QUOTE + " ".join(results)}
            stop = "end_turn"
        else:
            start = {"type": "tool_use", "id": "toolu_scripted_1", "name": "Bash", "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(BASH_INPUT)}
            stop = "tool_use"
        message = {
            "id": "msg_scripted",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 1},
        }
        return b"".join(
            [
                _event("message_start", {"type": "message_start", "message": message}),
                _event(
                    "content_block_start", {"type": "content_block_start", "index": 0, "content_block": start}
                ),
                _event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
                _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
                _event(
                    "message_delta",
                    {"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": 5}},
                ),
                _event("message_stop", {"type": "message_stop"}),
            ]
        )

    # -- OpenAI Responses -----------------------------------------------------------------------------

    def _responses(self, body: dict[str, Any]) -> bytes:
        outputs = [
            _text_of(i.get("output")) for i in body["input"] if i.get("type") == "function_call_output"
        ]
        item: dict[str, Any]
        if outputs:
            text = QUOTE + " ".join(outputs)
            content = [{"type": "output_text", "text": text, "annotations": []}]
            item = {"type": "message", "id": "msg_scripted", "role": "assistant", "content": content}
        else:
            item = {"type": "function_call", "id": "fc_scripted", "call_id": "call_scripted_1"}
            item |= {"name": "exec_command", "arguments": json.dumps(EXEC_INPUT)}
        item["status"] = "completed"
        response = {
            "id": "resp_scripted",
            "object": "response",
            "created_at": int(time.time()),
            "model": body["model"],
            "status": "in_progress",
            "output": [],
        }
        usage = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
        done = response | {"status": "completed", "output": [item], "usage": usage}
        events = [
            {"type": "response.created", "response": response},
            {"type": "response.output_item.added", "output_index": 0, "item": item},
            {"type": "response.output_item.done", "output_index": 0, "item": item},
            {"type": "response.completed", "response": done},
        ]
        return b"".join(_event(e["type"], e) for e in events)


def _text_of(content: Any) -> str:
    """A tool result's text, whether given as a string or as text parts."""
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else json.dumps(content)

"""Fake OpenRouter: OpenAI-format /api/v1/chat/completions and /api/v1/models, scripted faults.

Without a script it answers `echo: <last user text>` (split into `chunks` stream events with `delay`
seconds between them), with OpenRouter's `: OPENROUTER PROCESSING` keep-alive comment first.
A `ChatReply` script is a model turn rendered to match the request (JSON or stream): a tool call with
its arguments streamed in pieces, or a text quoting the tool results the request carries.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.server import FakeServer, Recorded, Script

DEFAULT_MODELS = (
    "openai/gpt-4o-mini",
    "anthropic/claude-3.5-sonnet",
    "meta-llama/llama-3.3-70b-instruct:free",
)


@dataclass
class ChatReply:
    """A scripted model turn. With tool_calls the answer calls them (finish_reason tool_calls); with
    quote_tool_results it is `tool results: ` and the content of every tool message after the last
    assistant message (so a test sees what reached the model); else `text`."""

    text: str = ""
    # Arguments given as text are sent as they are (a weak model's malformed JSON).
    tool_calls: list[tuple[str, dict[str, Any] | str]] = field(default_factory=list)
    quote_tool_results: bool = False
    chunks: int | None = None  # stream: text events (default FakeOpenRouter.chunks)
    usage: FakeUsage | None = None  # the answer's token counts and cost (default: see FakeUsage)

    def answer(self, body: dict[str, Any]) -> str:
        return "tool results: " + " ".join(tool_results(body)) if self.quote_tool_results else self.text


@dataclass(frozen=True)
class FakeUsage:
    """What an answer reports. `cost` None: FAKE_INPUT_PRICE and FAKE_OUTPUT_PRICE (USD per 1M tokens) of
    the uncached prompt and the completion, as OpenRouter reports the credits a call used."""

    prompt: int = 7
    completion: int = 5
    cached: int = 0
    reasoning: int = 0
    cost: float | None = None

    @property
    def usd(self) -> float:
        if self.cost is not None:
            return self.cost
        return ((self.prompt - self.cached) * FAKE_INPUT_PRICE + self.completion * FAKE_OUTPUT_PRICE) / 1e6


FAKE_INPUT_PRICE, FAKE_OUTPUT_PRICE = 1.5, 4.0


def usage_object(body: dict[str, Any] | None, tokens: FakeUsage) -> dict[str, Any]:
    """OpenRouter's usage object: the counts, and with usage accounting asked for (`usage: {include:
    true}`) the cost in credits (USD) and the token details, as OpenRouter sends them."""
    out: dict[str, Any] = {
        "prompt_tokens": tokens.prompt,
        "completion_tokens": tokens.completion,
        "total_tokens": tokens.prompt + tokens.completion,
    }
    if ((body or {}).get("usage") or {}).get("include"):
        out |= {
            "cost": tokens.usd,
            "is_byok": False,
            "prompt_tokens_details": {"cached_tokens": tokens.cached, "audio_tokens": 0},
            "cost_details": {"upstream_inference_cost": None},
            "completion_tokens_details": {"reasoning_tokens": tokens.reasoning, "image_tokens": 0},
        }
    return out


class FakeOpenRouter(FakeServer):
    def __init__(self, keys: tuple[str, ...], models: tuple[str, ...] = DEFAULT_MODELS) -> None:
        super().__init__()
        self.keys = set(keys)
        self.models = list(models)
        self.chunks = 5
        self.delay = 0.0
        self.models_status = 200

    def enqueue(self, *scripts: Script | ChatReply) -> None:  # type: ignore[override]
        super().enqueue(*scripts)  # type: ignore[arg-type]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def handle(self, h: BaseHTTPRequestHandler, rec: Recorded) -> None:
        path = rec.path.split("?")[0]
        if not self._authorised(rec):
            self.send_json(h, 401, {"error": {"code": 401, "message": "No auth credentials found"}})
            return
        if rec.method == "GET" and path == "/api/v1/models":
            if self.models_status != 200:
                self.send_json(
                    h, self.models_status, {"error": {"code": self.models_status, "message": "down"}}
                )
                return
            self.send_json(
                h, 200, {"data": [{"id": m, "name": m, "context_length": 8192} for m in self.models]}
            )
            return
        if rec.method == "POST" and path == "/api/v1/chat/completions":
            script: Script | ChatReply | None = self._next_script()
            if isinstance(script, ChatReply):
                self._reply(h, rec.json(), script)
                return
            if script is not None:
                self.play(h, script, key=rec.headers.get("authorization", "")[7:])
                return
            self._echo(h, rec.json())
            return
        self.send_json(h, 404, {"error": {"code": 404, "message": f"no route {path}"}})

    def _authorised(self, rec: Recorded) -> bool:
        auth = rec.headers.get("authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in self.keys

    def _echo(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        text = "echo: " + last_user_text(body)
        model = body.get("model", "")
        if body.get("stream"):
            events = [b": OPENROUTER PROCESSING\n\n", *stream_events(text, model, self.chunks, body)]
            self.send_stream(h, events, self.delay)
        else:
            self.send_json(h, 200, completion(text, model, usage_object(body, FakeUsage())))

    def _reply(self, h: BaseHTTPRequestHandler, body: dict[str, Any], reply: ChatReply) -> None:
        model = body.get("model", "")
        if not reply.tool_calls:
            text = reply.answer(body)
            if body.get("stream"):
                events = stream_events(text, model, reply.chunks or self.chunks, body, reply.usage)
                self.send_stream(h, [b": OPENROUTER PROCESSING\n\n", *events], self.delay)
            else:
                usage = usage_object(body, reply.usage or FakeUsage())
                self.send_json(h, 200, completion(text, model, usage))
        elif body.get("stream"):
            events = tool_call_events(reply.tool_calls, model, self.chunks, body, reply.usage)
            self.send_stream(h, [b": OPENROUTER PROCESSING\n\n", *events], self.delay)
        else:
            usage = usage_object(body, reply.usage or FakeUsage(completion=3))
            self.send_json(h, 200, tool_call_completion(reply.tool_calls, model, usage))


def last_user_text(body: dict[str, Any]) -> str:
    for msg in reversed(body.get("messages") or []):
        if msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
            return content or ""
    return ""


def completion(text: str, model: str, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": "gen-fake-1",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "provider": "FakeProvider",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": usage or {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
    }


def stream_events(
    text: str | list[str],
    model: str,
    chunks: int = 5,
    body: dict[str, Any] | None = None,
    tokens: FakeUsage | None = None,
) -> list[bytes]:
    """OpenAI chunk events for `text` (split into about `chunks` pieces, or given as pieces),
    then a finish chunk (with usage when the request asked for it) and [DONE]. Usage: `tokens`, by
    default 7 prompt tokens and a completion token per piece."""
    ev = _chunker(model)
    pieces = text if isinstance(text, list) else _split(text, chunks)
    out = [ev({"role": "assistant", "content": pieces[0]})]
    out += [ev({"content": p}) for p in pieces[1:]]
    usage = usage_object(body, tokens or FakeUsage(completion=len(pieces)))
    out.append(ev({}, "stop", _if_asked(body, usage)))
    out.append(b"data: [DONE]\n\n")
    return out


def tool_call_events(
    calls: list[tuple[str, dict[str, Any] | str]],
    model: str,
    chunks: int = 3,
    body: dict[str, Any] | None = None,
    tokens: FakeUsage | None = None,
) -> list[bytes]:
    """OpenAI chunk events calling `calls` as the API streams them: per call a first delta with its id,
    name and empty arguments, then the arguments JSON in about `chunks` pieces; finish_reason
    tool_calls (with usage when the request asked for it) and [DONE]."""
    ev = _chunker(model)
    out = [ev({"role": "assistant", "content": None})]
    for i, (name, args) in enumerate(calls):
        function = {"name": name, "arguments": ""}
        out.append(
            ev({"tool_calls": [{"index": i, "id": _call_id(i), "type": "function", "function": function}]})
        )
        for piece in _split(_arguments(args), chunks):
            out.append(ev({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
    usage = usage_object(body, tokens or FakeUsage(completion=3))
    out.append(ev({}, "tool_calls", _if_asked(body, usage)))
    out.append(b"data: [DONE]\n\n")
    return out


def tool_call_completion(
    calls: list[tuple[str, dict[str, Any] | str]], model: str, usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    answer = completion("", model, usage)
    choice = answer["choices"][0]
    choice["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": _call_id(i), "type": "function", "function": {"name": name, "arguments": _arguments(args)}}
            for i, (name, args) in enumerate(calls)
        ],
    }
    choice["finish_reason"] = "tool_calls"
    return answer


def tool_results(body: dict[str, Any]) -> list[str]:
    """The content of each tool message after the last assistant message (text parts joined)."""
    found: list[str] = []
    for msg in body.get("messages") or []:
        if msg.get("role") == "assistant":
            found = []
        elif msg.get("role") == "tool":
            content = msg.get("content")
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            found.append(str(content or ""))
    return found


def _chunker(model: str) -> Callable[..., bytes]:
    """Frames deltas as chunk events of one completion (one id, one `created`)."""
    created = int(time.time())

    def ev(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> bytes:
        obj: dict[str, Any] = {
            "id": "gen-fake-1",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        if usage is not None:
            obj["usage"] = usage
        return b"data: " + json.dumps(obj).encode() + b"\n\n"

    return ev


def _split(text: str, chunks: int) -> list[str]:
    size = max(1, -(-len(text) // max(1, chunks)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _if_asked(body: dict[str, Any] | None, usage: dict[str, Any]) -> dict[str, Any] | None:
    return usage if ((body or {}).get("stream_options") or {}).get("include_usage") else None


def _arguments(args: dict[str, Any] | str) -> str:
    return args if isinstance(args, str) else json.dumps(args)


def _call_id(i: int) -> str:
    return f"call_fake_{i}"

"""OpenAI's legacy completions (`/v1/completions`) <-> the internal chat pivot.

A prompt becomes one user message; the answer's text becomes `choices[0].text` of a `text_completion`,
and a chat chunk stream becomes OpenAI's completions chunks (`object: "text_completion"`, a `text` delta
per chunk, the usage chunk only when the client asked for it, then `[DONE]`). What a chat model cannot
do (several prompts, `suffix`, `echo`, `logprobs`, `n` or `best_of` above 1, token-array prompts) is a
400 naming the field; error events pass through unchanged (they are OpenAI's already).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from translators import json_codec
from translators.openai.synthetic import sse_error_event
from translators.openai.types import RequestError, decode_object
from translators.sse import DONE, SSEDecoder, SSEEvent, encode_data

log = logging.getLogger(__name__)

# Fields that mean the same in both APIs: passed on as they are.
PASSED = ("max_tokens", "temperature", "top_p", "stop", "presence_penalty", "frequency_penalty", "seed",
          "user", "logit_bias")  # fmt: skip
FINISH = frozenset({"stop", "length", "content_filter"})  # what a text_completion's finish_reason may be
ENDED_EARLY = "The upstream stream ended before it was complete."
UNDECODABLE = "The upstream stream sent an event that is not JSON."


@dataclass(frozen=True, slots=True)
class CompletionsRequest:
    chat: dict[str, Any]
    model: str
    stream: bool
    include_usage: bool  # the client asked for the usage chunk


def parse(raw: bytes) -> CompletionsRequest:
    """A completions request body as the internal chat request. Raises RequestError."""
    body = decode_object(raw, "completions")
    prompt = _prompt(body.get("prompt"))
    _refuse_unsupported(body)
    model, stream = body.get("model", ""), body.get("stream", False)
    if not isinstance(model, str):
        raise RequestError("Invalid value for 'model': must be a string.", param="model")
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise RequestError("Invalid value for 'stream': must be true or false.", param="stream")
    chat: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    chat.update({k: body[k] for k in PASSED if body.get(k) is not None})
    include_usage = False
    if stream:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        chat |= {"stream": True, "stream_options": {"include_usage": True}}
    return CompletionsRequest(chat, model, stream, include_usage)


def _prompt(value: Any) -> str:
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        value = value[0]
    if isinstance(value, str):
        return value
    if value is None:
        raise RequestError("Missing required parameter: 'prompt'.", param="prompt")
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        raise RequestError(
            f"'prompt' holds {len(value)} prompts; this proxy answers one prompt per request: send each "
            "as its own request.",
            param="prompt",
        )
    if isinstance(value, list) and value and all(isinstance(v, int | list) for v in value):
        raise RequestError("Token arrays as 'prompt' are not supported: send the text.", param="prompt")
    raise RequestError("'prompt' must be a string.", param="prompt")


def _refuse_unsupported(body: dict[str, Any]) -> None:
    """What only a completions model can do is refused rather than silently ignored."""
    for name in ("n", "best_of"):
        if body.get(name) not in (None, 1):
            raise RequestError(f"'{name}' must be 1: this proxy answers with one completion.", param=name)
    if body.get("suffix"):
        raise RequestError("'suffix' (insertion) is not supported by chat models.", param="suffix")
    if body.get("echo"):
        raise RequestError("'echo' is not supported: the prompt is not repeated.", param="echo")
    if body.get("logprobs") is not None:
        raise RequestError("'logprobs' is not supported by this proxy.", param="logprobs")


def text_completion(completion: dict[str, Any], model: str) -> dict[str, Any]:
    """A chat.completion as a text_completion (`model`: the one asked for, when the answer names none)."""
    choices = completion.get("choices") or [{}]
    message = choices[0].get("message") or {}
    return {
        **_head(completion, model),
        "choices": [_choice(message.get("content") or "", choices[0].get("finish_reason") or "stop")],
        "usage": completion.get("usage") or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def _head(obj: dict[str, Any], model: str) -> dict[str, Any]:
    chat_id = obj.get("id")
    return {
        "id": "cmpl-" + (chat_id.removeprefix("chatcmpl-") if isinstance(chat_id, str) else ""),
        "object": "text_completion",
        "created": obj.get("created") or int(time.time()),
        "model": obj.get("model") or model,
        "system_fingerprint": obj.get("system_fingerprint"),
    }


def _choice(text: str, finish: str | None) -> dict[str, Any]:
    # A chat-only finish (tool_calls: no tools are sent) reads as a plain stop.
    finish = finish if finish is None or finish in FINISH else "stop"
    return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}


class CompletionsStream:
    """Internal chat chunk SSE (any split) -> completions chunk SSE. feed() and finish() never raise:
    whatever breaks, the client gets an error event and nothing after it."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self._model = model
        self._include_usage = include_usage
        self._decoder = SSEDecoder()
        self._ended = False  # [DONE] or an error event was sent

    def feed(self, data: bytes) -> list[bytes]:
        return self._guarded(lambda: self._decoder.feed(data))

    def finish(self) -> list[bytes]:
        out = self._guarded(self._decoder.finish)
        if not self._ended:
            self._ended = True
            out.append(sse_error_event(ENDED_EARLY, 502, code="upstream_truncated"))
        return out

    def _guarded(self, events: Callable[[], list[SSEEvent]]) -> list[bytes]:
        if self._ended:
            return []
        try:
            return self._render(events())
        except Exception as exc:  # the client must get an error event, whatever broke
            log.exception("completions stream rendering failed")
            self._ended = True
            return [sse_error_event(f"Internal proxy error while streaming: {type(exc).__name__}.", 500)]

    def _render(self, events: list[SSEEvent]) -> list[bytes]:
        out: list[bytes] = []
        for ev in events:
            if self._ended:
                break
            if ev.data.strip() == "[DONE]":
                self._ended = True
                out.append(DONE)
                continue
            try:
                obj = json_codec.loads(ev.data)
            except json_codec.JSONDecodeError:
                self._ended = True
                out.append(sse_error_event(UNDECODABLE, 502, code="upstream_bad_response"))
                break
            if isinstance(obj, dict) and obj.get("error") is not None:
                self._ended = True
                out.append(encode_data(obj))
            elif isinstance(obj, dict):
                out.extend(self._chunks(obj))
        return out

    def _chunks(self, obj: dict[str, Any]) -> list[bytes]:
        head = _head(obj, self._model)
        out = []
        for ch in obj.get("choices") or []:
            text = (ch.get("delta") or {}).get("content") or ""
            if text or ch.get("finish_reason"):
                out.append(encode_data({**head, "choices": [_choice(text, ch.get("finish_reason"))]}))
        if obj.get("usage") and self._include_usage:
            out.append(encode_data({**head, "choices": [], "usage": obj["usage"]}))
        return out

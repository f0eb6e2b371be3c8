"""The backends and the internal request's extensions: countTokens calls, and what OpenRouter is spared."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from addons.backends.gemini import GeminiBackend
from addons.backends.openrouter import OpenRouterBackend
from translators.gemini import to_gemini_request
from translators.openai.types import RequestError

KEY = "AIzaSy-test-key-0000000000000000000"
REQUEST: dict[str, Any] = {
    "model": "client-name",
    "messages": [
        {
            "role": "system",
            "content": [{"type": "text", "text": "rules", "cache_control": {"type": "ephemeral"}}],
        },
        {"role": "user", "content": "hi"},
    ],
    "top_k": 20,
    "reasoning": {"max_tokens": 2048},
    "stream": True,
    "stream_options": {"include_usage": True},
}


def test_gemini_count_call_shape() -> None:
    call = GeminiBackend("http://127.0.0.1:9/").count_call(REQUEST, "gemini-2.5-flash", KEY)
    assert call.method == "POST" and not call.stream
    assert call.url == "http://127.0.0.1:9/v1beta/models/gemini-2.5-flash:countTokens"
    assert call.headers["x-goog-api-key"] == KEY and call.secret_headers == ("x-goog-api-key",)
    assert KEY not in call.url and KEY.encode() not in call.body
    body = json.loads(call.body)
    assert body == {
        "generateContentRequest": {
            "model": "models/gemini-2.5-flash",
            **to_gemini_request(REQUEST, model="gemini-2.5-flash"),
        }
    }
    config = body["generateContentRequest"]["generationConfig"]
    assert config["topK"] == 20 and config["thinkingConfig"]["thinkingBudget"] == 2048


def test_gemini_count_call_refuses_what_generate_would() -> None:
    with pytest.raises(RequestError) as exc:
        GeminiBackend("http://g").count_call({"messages": [{"role": "wizard"}]}, "gemini-2.5-flash", KEY)
    assert exc.value.param == "messages[0].role"


@pytest.mark.parametrize(
    ("body", "count"),
    [(b'{"totalTokens": 1234}', 1234), (b'{"totalTokens": "x"}', None), (b"<html>", None), (b"\xff", None)],
)
def test_gemini_read_count(body: bytes, count: int | None) -> None:
    assert GeminiBackend("http://g").read_count(body) == count


def test_openrouter_has_no_count_endpoint() -> None:
    o = OpenRouterBackend("http://o", "s", "t")
    assert o.count_call(REQUEST, "openai/gpt-4o-mini", "sk-or-x") is None
    assert o.read_count(b'{"totalTokens": 3}') is None


def test_openrouter_strips_the_extension_fields_without_touching_the_caller_request() -> None:
    assistant = {
        "role": "assistant",
        "content": "Paris.",
        "reasoning_content": "thinking...",
        "reasoning_signature": "U0lH",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }
    request = {**REQUEST, "messages": [*REQUEST["messages"], assistant, {"role": "user", "content": "and?"}]}
    before = copy.deepcopy(request)
    call = OpenRouterBackend("http://o", "s", "t").build_call(request, "openai/gpt-4o-mini", "sk-or-x", True)
    sent = json.loads(call.body)
    assert request == before  # the caller's request is not changed
    assert sent["messages"][2] == {k: v for k, v in assistant.items() if not k.startswith("reasoning_")}
    assert sent["messages"][0] == request["messages"][0]  # cache_control passes as is
    assert (
        sent["reasoning"] == {"max_tokens": 2048}
        and sent["top_k"] == 20
        and sent["model"] == "openai/gpt-4o-mini"
    )


def test_openrouter_does_not_copy_messages_without_extensions(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr("addons.backends.openrouter._dumps", lambda body: seen.append(body) or b"{}")
    request = {**REQUEST, "messages": [*REQUEST["messages"], {"role": "assistant", "content": "x"}]}
    OpenRouterBackend("http://o", "s", "t").build_call(request, "m", "sk-or-x", False)
    assert seen[0]["messages"] is request["messages"]
    request["messages"][-1]["reasoning_content"] = "r"
    OpenRouterBackend("http://o", "s", "t").build_call(request, "m", "sk-or-x", False)
    assert seen[1]["messages"] is not request["messages"]
    assert seen[1]["messages"][:-1] == request["messages"][:-1]
    assert all(a is b for a, b in zip(seen[1]["messages"][:-1], request["messages"][:-1], strict=True))

"""Rotation, failover and error shaping through the real pipeline, in-process (MockUpstream)."""

from __future__ import annotations

import asyncio
import json

from addons.upstream import UpstreamCall, UpstreamError
from tests.fakes.fake_openrouter import completion, stream_events
from tests.unit.pipeline.conftest import GEMINI_KEYS, OR_KEYS, MakeCore, call, drain
from tests.unit.pipeline.mock_upstream import Handler, MockAnswer, json_answer, sse_answer

MODEL = "openai/gpt-4o-mini"
HELLO = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


def by_key(answers: dict[str, MockAnswer | UpstreamError]) -> Handler:
    """A handler answering per key (the OpenRouter bearer or the Gemini header)."""

    def handler(c: UpstreamCall) -> MockAnswer | UpstreamError:
        key = c.headers.get("authorization", "").removeprefix("Bearer ") or c.headers.get(
            "x-goog-api-key", ""
        )
        return answers[key]

    return handler


def error(status: int, message: str = "nope") -> MockAnswer:
    return json_answer(status, {"error": {"message": message, "code": status}})


def test_a_rate_limited_key_rests_and_the_next_key_answers(make_core: MakeCore) -> None:
    core, up = make_core(
        by_key({OR_KEYS[0]: error(429), OR_KEYS[1]: json_answer(200, completion("ok", MODEL))})
    )
    first = json_answer(429, {"error": {"message": "slow down"}}, **{"retry-after": "7"})
    up.handler = by_key({OR_KEYS[0]: first, OR_KEYS[1]: json_answer(200, completion("ok", MODEL))})
    reply = call(core, HELLO)
    assert reply.status == 200 and json.loads(reply.body)["choices"][0]["message"]["content"] == "ok"
    assert reply.record is not None and [a.status for a in reply.record.attempts] == [429, 200]
    left = asyncio.run(core.stores.cooldowns.remaining("openrouter", MODEL, "OPENROUTER_API_KEY_1"))
    assert 6 < left <= 7
    # The rested key is skipped by the next request: only key 2 is called.
    up.calls.clear()
    assert call(core, HELLO).status == 200
    assert up.keys_used() == [f"Bearer {OR_KEYS[1]}"]


def test_every_key_rate_limited_is_a_429_with_retry_after_then_no_upstream_call(make_core: MakeCore) -> None:
    limited = json_answer(429, {"error": {"message": "slow down"}}, **{"retry-after": "30"})
    core, up = make_core(by_key({OR_KEYS[0]: limited, OR_KEYS[1]: limited}))
    reply = call(core, HELLO)
    err = json.loads(reply.body)["error"]
    assert reply.status == 429 and err["code"] == "all_keys_cooling_down"
    assert int(reply.headers["retry-after"]) in (29, 30) and reply.headers["x-should-retry"] == "false"
    assert "OPENROUTER_API_KEY_1" in err["message"] and OR_KEYS[0] not in err["message"]
    assert len(up.calls) == 2
    again = call(core, HELLO)
    assert again.status == 429 and len(up.calls) == 2  # refused before any provider is called


def test_a_server_error_fails_over_but_a_client_error_is_final(make_core: MakeCore) -> None:
    ok = json_answer(200, completion("ok", MODEL))
    core, up = make_core(by_key({OR_KEYS[0]: error(500), OR_KEYS[1]: ok}))
    assert call(core, HELLO).status == 200 and len(up.calls) == 2
    core, up = make_core(by_key({OR_KEYS[0]: error(400, "bad request"), OR_KEYS[1]: ok}))
    reply = call(core, HELLO)
    assert reply.status == 400 and len(up.calls) == 1
    assert json.loads(reply.body)["error"]["message"] == "bad request"


def test_a_key_echoed_in_a_final_error_is_redacted(make_core: MakeCore) -> None:
    echo = error(401, f"Incorrect API key provided: {OR_KEYS[0]}")
    core, _ = make_core(by_key({OR_KEYS[0]: echo, OR_KEYS[1]: echo}))
    reply = call(core, HELLO)
    assert reply.status == 401 and OR_KEYS[0].encode() not in reply.body
    assert b"REDACTED" in reply.body


def test_garbage_and_unreachable_upstreams_end_in_openai_errors(make_core: MakeCore) -> None:
    core, up = make_core(lambda c: MockAnswer(200, b"<html>not json</html>", {"content-type": "text/html"}))
    reply = call(core, HELLO)
    assert reply.status == 502 and json.loads(reply.body)["error"]["code"] == "upstream_bad_response"
    assert len(up.calls) == 2  # the other key was tried too
    core, up = make_core(
        lambda c: UpstreamError(502, "Cannot connect to upstream x.", "upstream_unreachable")
    )
    reply = call(core, HELLO)
    assert reply.status == 502 and json.loads(reply.body)["error"]["code"] == "upstream_unreachable"


def test_a_stream_is_relayed_and_a_mid_stream_failure_ends_with_an_error_event(make_core: MakeCore) -> None:
    events = stream_events("Hello there, world", MODEL, chunks=3)
    core, _ = make_core(lambda c: sse_answer(events))
    reply = call(core, {**HELLO, "stream": True})
    assert reply.stream is not None and reply.status == 200
    body = drain(reply)
    assert body == b"".join(events)
    assert reply.transcript and reply.transcript.completion
    assert reply.transcript.completion["choices"][0]["message"]["content"] == "Hello there, world"
    broken = UpstreamError(502, "Upstream x broke off the stream: reset.", "upstream_error")
    core, _ = make_core(lambda c: sse_answer(events[:2], fail_after=broken))
    body = drain(call(core, {**HELLO, "stream": True}))
    assert body.startswith(b"".join(events[:2])) and b'"code":"upstream_error"' in body.replace(b" ", b"")


def test_gemini_answers_are_translated_and_routes_fail_over_across_backends(make_core: MakeCore) -> None:
    answer = {"role": "model", "parts": [{"text": "from gemini"}]}
    gemini_ok = json_answer(200, {
        "candidates": [{"content": answer, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5},
    })  # fmt: skip

    def handler(c: UpstreamCall) -> MockAnswer:
        return gemini_ok if "x-goog-api-key" in c.headers else error(503, "overloaded")

    yaml = {
        "routes": {"fast": {"policy": "m", "elements": [f"openrouter:{MODEL}", "gemini:gemini-2.5-flash"]}}
    }
    core, up = make_core(handler, yaml=yaml)
    reply = call(core, {**HELLO, "model": "fast"})
    out = json.loads(reply.body)
    assert reply.status == 200 and out["choices"][0]["message"]["content"] == "from gemini"
    assert out["usage"]["total_tokens"] == 5
    assert reply.record and reply.record.route == "fast" and reply.record.backend == "gemini"
    assert [c.url.split("/")[2] for c in up.calls] == ["openrouter.ai", "generativelanguage.googleapis.com"]
    assert up.calls[1].headers["x-goog-api-key"] in GEMINI_KEYS and "key=" not in up.calls[1].url


def test_command_only_messages_are_answered_by_the_proxy_in_json_and_sse(make_core: MakeCore) -> None:
    core, up = make_core(lambda c: error(500))
    body = {"model": MODEL, "messages": [{"role": "user", "content": "!/set(project=alpha)"}]}
    reply = call(core, body, {"x-session-id": "s1"})
    assert (
        reply.status == 200
        and "project set to alpha" in json.loads(reply.body)["choices"][0]["message"]["content"]
    )
    streamed = drain(call(core, {**body, "stream": True}, {"x-session-id": "s1"}))
    assert streamed.endswith(b"data: [DONE]\n\n") and b"project set to alpha" in streamed
    assert up.calls == [] and asyncio.run(core.stores.sessions.get("s1")).project == "alpha"
    assert reply.record and reply.record.answered_by == "proxy"


def test_keys_pasted_into_a_prompt_never_leave(make_core: MakeCore) -> None:
    core, up = make_core(lambda c: json_answer(200, completion("ok", MODEL)))
    body = {"model": MODEL, "messages": [{"role": "user", "content": f"my key is {GEMINI_KEYS[1]}"}]}
    assert call(core, body).status == 200
    sent = up.calls[0].body
    assert GEMINI_KEYS[1].encode() not in sent and b"REDACTED" in sent

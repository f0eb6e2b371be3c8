"""Budgets through the real pipeline, in-process (MockUpstream): a spent budget refuses before any
provider is called, in each dialect's error shape; commands still run; `!/status` shows what is left;
calls of a nearly spent budget wait for the one in flight; a call's place is given back however it ends."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from addons.frontends.base import Reply
from addons.pipeline import dispatch
from addons.pipeline.core import Core
from addons.upstream import UpstreamCall
from tests.fakes.fake_openrouter import completion, stream_events
from tests.unit.pipeline.conftest import MakeCore, drain, run
from tests.unit.pipeline.mock_upstream import MockAnswer, json_answer

MODEL = "openai/gpt-4o-mini"
PATHS = {"chat": "/v1/chat/completions", "messages": "/v1/messages", "responses": "/v1/responses"}


def priced(cost: float | None, prompt: int = 700, completion_tokens: int = 300) -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion_tokens}
    usage["total_tokens"] = prompt + completion_tokens
    return usage if cost is None else {**usage, "cost": cost}


def answering(cost: float | None = 0.4) -> Any:
    def handler(c: UpstreamCall) -> MockAnswer:
        return json_answer(200, completion("ok", MODEL, priced(cost)))

    return handler


def send(core: Core, text: str, dialect: str = "chat", session: str = "s", **extra: Any) -> Reply:
    messages = [{"role": "user", "content": text}]
    body: dict[str, Any] = {"model": MODEL, "messages": messages, **extra}
    if dialect == "messages":
        body["max_tokens"] = 100
    if dialect == "responses":
        body = {"model": MODEL, "input": text, **extra}
    headers = {"x-session-id": session, "anthropic-version": "2023-06-01"}

    async def go() -> Reply:
        reply = await dispatch.handle(core, "POST", PATHS[dialect], headers, json.dumps(body).encode())
        assert reply is not None
        return reply

    return run(go())


def said(reply: Reply) -> str:
    return str(json.loads(drain(reply))["choices"][0]["message"]["content"])


def test_a_spent_session_budget_refuses_in_every_dialect_before_any_provider_is_called(
    make_core: MakeCore,
) -> None:
    core, up = make_core(answering(0.4))
    assert send(core, "!/set(budget=0.50) first").status == 200  # $0.40 of $0.50
    assert send(core, "second").status == 200  # starts with $0.10 left: the one call that may overshoot
    calls = len(up.calls)
    chat = send(core, "third")
    assert len(up.calls) == calls  # refused before any provider was asked
    err = json.loads(chat.body)["error"]
    assert chat.status == 402 and chat.headers["x-should-retry"] == "false"
    assert (err["type"], err["code"]) == ("insufficient_quota", "budget_exceeded")
    assert err["message"] == (
        "Budget exceeded: this session's budget is $0.50; spent so far: $0.80. A session budget does not "
        "reset: raise it with !/set(budget=...) or remove it with !/unset(budget)."
    )
    messages = send(core, "third", "messages")
    body = json.loads(messages.body)
    assert messages.status == 402 and messages.headers["x-should-retry"] == "false"
    assert body == {"type": "error", "error": {"type": "billing_error", "message": err["message"]}}
    responses = send(core, "third", "responses")
    rerr = json.loads(responses.body)["error"]
    assert responses.status == 402 and responses.headers["x-should-retry"] == "false"
    assert (rerr["code"], rerr["message"]) == ("budget_exceeded", err["message"])
    streamed = send(core, "third", stream=True)
    assert streamed.status == 402 and streamed.stream is None
    assert len(up.calls) == calls
    assert chat.record is not None and chat.record.answered_by == "proxy"
    assert "budget exceeded" in chat.record.notes


def test_commands_still_run_on_a_spent_budget_and_a_new_budget_counts_at_once(make_core: MakeCore) -> None:
    core, up = make_core(answering(0.4))
    send(core, "!/set(budget=1k) hi")  # 1000 tokens: this call used 1000
    assert "budget=1000 tokens" in said(send(core, "!/help(set)"))
    status = said(send(core, "!/status"))
    assert "this session's budget: 0 tokens of 1,000 tokens left (1,000 tokens spent)" in status
    assert "this session's budget: 0 tokens of 1,000 tokens left" in said(send(core, "!/usage"))
    refused = send(core, "more")
    assert refused.status == 402 and "1,000 tokens" in json.loads(refused.body)["error"]["message"]
    # Raised in the very message that asks again: it counts for that message.
    calls = len(up.calls)
    assert send(core, "!/set(budget=5k) more").status == 200 and len(up.calls) == calls + 1
    assert send(core, "!/set(budget=1500 tokens) again").status == 402
    assert send(core, "!/unset(budget) again").status == 200
    assert "budgets: none apply to this session" in said(send(core, "!/status"))


def test_a_session_budget_counts_the_calls_before_it_was_set(make_core: MakeCore) -> None:
    core, _ = make_core(answering(0.3))
    send(core, "one")
    send(core, "two")
    assert send(core, "!/set(budget=$0.50) three").status == 402  # $0.60 spent already


def test_a_bad_budget_is_answered_and_nothing_is_sent(make_core: MakeCore) -> None:
    core, up = make_core(answering())
    reply = send(core, "!/set(budget=5) hi")
    assert reply.status == 200 and len(up.calls) == 0
    assert "ambiguous: write $5 (or 5.00) for USD, 5k for tokens" in said(reply)


def test_a_project_daily_budget_from_the_settings_holds_for_every_session_of_the_project(
    make_core: MakeCore,
) -> None:
    core, up = make_core(answering(0.4), yaml={"budgets": {"acme": {"daily": 1.0}}})
    assert send(core, "!/set(project=acme) a", session="one").status == 200
    assert send(core, "!/set(project=acme) b", session="two").status == 200
    assert send(core, "c", session="one").status == 200  # $0.80 spent: the one call that may overshoot
    refused = send(core, "d", session="two")
    message = json.loads(refused.body)["error"]["message"]
    assert refused.status == 402 and message.startswith(
        "Budget exceeded: project 'acme' daily budget is $1.00; spent today (UTC): $1.20. It resets at "
    )
    assert message.endswith("T00:00:00Z; raise it under budgets: in the settings file.")
    assert send(core, "e", session="elsewhere").status == 200  # no project: no project budget
    status = said(send(core, "!/status", session="one"))
    assert "project 'acme' daily budget: $0.00 of $1.00 left ($1.20 spent, resets " in status
    assert len(up.calls) == 4


def test_an_unpriced_call_counts_its_tokens_and_says_it_is_not_in_usd(make_core: MakeCore) -> None:
    core, _ = make_core(answering(cost=None))
    reply = send(core, "!/set(budget=2.50) hi")
    assert reply.record is not None
    assert any("not counted in USD budgets" in note for note in reply.record.notes)
    status = said(send(core, "!/status"))
    assert "$2.50 of $2.50 left ($0.00 spent); 1 call(s) without a known price not counted" in status


# -- calls in flight -------------------------------------------------------------------------------------


class Held(MockAnswer):
    """A streamed answer that sends its first event, then waits for `go` before the rest (the call stays
    in flight, committed, until the test lets it end)."""

    def __init__(self, events: list[bytes], go: asyncio.Event) -> None:
        super().__init__(200, events, {"content-type": "text/event-stream"})
        self.go = go

    async def chunks(self) -> Any:
        yield self.body[0]
        await self.go.wait()
        for c in self.body[1:]:
            yield c


def held(core: Core, go: asyncio.Event, cost: float) -> None:
    def handler(c: UpstreamCall) -> MockAnswer:
        body = json.loads(c.body)
        usage = priced(cost)
        events = stream_events("ok", MODEL, 2, body)
        # The finish chunk carries the usage, as OpenRouter sends it when asked.
        events[-2] = b"data: " + json.dumps(
            {"id": "x", "object": "chat.completion.chunk", "model": MODEL,
             "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage}
        ).encode() + b"\n\n"  # fmt: skip
        return Held(events, go)

    core.upstream.handler = handler  # type: ignore[attr-defined]


async def ask(core: Core, text: str) -> Reply:
    body = {"model": MODEL, "messages": [{"role": "user", "content": text}], "stream": True}
    reply = await dispatch.handle(
        core, "POST", PATHS["chat"], {"x-session-id": "s"}, json.dumps(body).encode()
    )
    assert reply is not None
    return reply


async def read_all(reply: Reply) -> bytes:
    assert reply.stream is not None
    return b"".join([c async for c in reply.stream])


def test_while_no_call_size_is_known_a_second_call_waits_for_the_first(make_core: MakeCore) -> None:
    core, up = make_core(answering())

    async def go() -> None:
        gate = asyncio.Event()
        held(core, gate, 0.3)
        await ask(core, "!/set(budget=1.00)")
        first = await ask(core, "first")  # committed, in flight until the gate opens
        second = asyncio.ensure_future(ask(core, "second"))
        await asyncio.sleep(0.5)
        assert len(up.calls) == 1 and not second.done()  # waits: one call at a time until sizes are known
        gate.set()
        await read_all(first)
        reply = await asyncio.wait_for(second, 5)
        assert b"[DONE]" in await read_all(reply) and len(up.calls) == 2
        # With $0.40 left and calls of $0.30, one at a time again: the third waits while the fourth...
        third = await ask(core, "third")
        fourth = asyncio.ensure_future(ask(core, "fourth"))
        await read_all(third)  # $0.90 spent
        refused = await asyncio.wait_for(fourth, 5)
        assert refused.status == 200 and len(up.calls) == 4  # started with $0.10 left: the one call
        await read_all(refused)
        assert (await ask(core, "fifth")).status == 402

    run(go())


def test_a_client_that_leaves_mid_stream_gives_its_place_back(make_core: MakeCore) -> None:
    core, up = make_core(answering())

    async def go() -> None:
        gate = asyncio.Event()
        held(core, gate, 0.3)
        await ask(core, "!/set(budget=1.00)")
        first = await ask(core, "first")
        assert first.stream is not None
        reading = asyncio.ensure_future(anext(aiter(first.stream)))
        await asyncio.sleep(0.05)
        reading.cancel()
        await first.stream.aclose()  # type: ignore[attr-defined]  # the relay closes it when the client goes
        gate.set()
        second = await asyncio.wait_for(ask(core, "second"), 5)
        assert second.status == 200 and len(up.calls) == 2
        await read_all(second)

    run(go())


def test_a_call_kept_waiting_past_proxy_timeout_may_retry(make_core: MakeCore) -> None:
    core, up = make_core(answering(), env={"PROXY_TIMEOUT": "0.5"})

    async def go() -> None:
        gate = asyncio.Event()
        held(core, gate, 0.3)
        await ask(core, "!/set(budget=1.00)")
        first = await ask(core, "first")
        busy = await asyncio.wait_for(ask(core, "second"), 5)
        assert busy.status == 429 and busy.headers["retry-after"] == "1"
        assert "x-should-retry" not in busy.headers  # unlike a spent budget, this one passes
        err = json.loads(busy.body)["error"]
        assert err["code"] == "budget_busy" and "none of them ended within 0.5 s" in err["message"]
        assert err["message"].startswith("this session's budget: $1.00 of $1.00 left ($0.00 spent)")
        gate.set()
        await read_all(first)
        assert len(up.calls) == 1

    run(go())


@pytest.mark.parametrize("status", [400, 500])
def test_a_call_that_fails_gives_its_place_back_without_spend(make_core: MakeCore, status: int) -> None:
    def failing(c: UpstreamCall) -> MockAnswer:
        return json_answer(status, {"error": {"message": "no", "code": status}})

    core, _ = make_core(failing)
    assert send(core, "!/set(budget=1.00) a").status == status
    assert send(core, "b").status == status  # not kept waiting: the failed call's place is free
    assert "$1.00 of $1.00 left ($0.00 spent)" in said(send(core, "!/status"))


def test_embeddings_count_toward_a_budget_and_are_refused_by_a_spent_one(make_core: MakeCore) -> None:
    def handler(c: UpstreamCall) -> MockAnswer:
        if c.url.endswith("/embeddings"):
            data = [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}]
            usage = {"prompt_tokens": 600, "total_tokens": 600, "cost": 0.2}
            return json_answer(200, {"object": "list", "data": data, "model": "e", "usage": usage})
        return json_answer(200, completion("ok", MODEL, priced(0.4)))

    core, up = make_core(handler)

    def embed() -> Reply:
        raw = json.dumps({"model": "openai/text-embedding-3-small", "input": "x"}).encode()
        reply = run(dispatch.handle(core, "POST", "/v1/embeddings", {"x-session-id": "s"}, raw))
        assert reply is not None
        return reply

    send(core, "!/set(budget=1k)")
    assert embed().status == 200  # 600 tokens
    assert send(core, "chat").status == 200  # 400 left: may start; 1,600 spent
    refused = embed()
    assert refused.status == 402 and json.loads(refused.body)["error"]["code"] == "budget_exceeded"
    assert "spent so far: 1,600 tokens" in json.loads(refused.body)["error"]["message"]
    assert len(up.calls) == 2


def test_a_place_taken_in_one_scope_goes_back_when_another_scope_refuses(make_core: MakeCore) -> None:
    core, _ = make_core(
        answering(0.4), yaml={"budgets": {"acme": {"daily": 0.3}}}, env={"PROXY_TIMEOUT": "0.5"}
    )
    assert send(core, "!/set(project=acme) a", session="other").status == 200  # acme: $0.40 of $0.30
    # The session's own budget (no call's size known: one at a time) admits, then acme's refuses.
    refused = send(core, "!/set(budget=$5, project=acme) b", session="mine")
    assert (
        refused.status == 402
        and "project 'acme' daily budget" in json.loads(refused.body)["error"]["message"]
    )
    assert send(core, "!/unset(project) c", session="mine").status == 200  # not kept waiting: no 429

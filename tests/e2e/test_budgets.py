"""Budgets end to end: a real mitmdump against the fake OpenRouter and the fake Gemini, driven with the
official SDKs. A budget refuses the request that would start over it, in each front-end's error shape,
without calling the provider; a project's daily budget comes from the settings file; and with Redis the
budgets hold across instances."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import anthropic
import openai
import pytest

from tests.conftest import OPENROUTER_KEYS
from tests.e2e.team_fixtures import Servers, Team, ofake, servers
from tests.fakes.fake_gemini import DEFAULT_MODELS, FakeGemini, Reply
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.fakes.keyed import KeyedOpenRouter
from tests.harness import ProxyProcess

GEMINI_KEYS = ("AIzaBudget-6Tq2Wn8Lx4Pk1Rv9Hc3Md7Jf5Yb0",)
OR_MODEL = "openai/gpt-4o-mini"
GM_MODEL = "gemini:gemini-2.5-flash"
# 10 + 5 tokens at $40,000 per 1M: $0.60 a call against a daily $1.00.
SETTINGS = """
budgets:
  acme: {daily: 1.00}
prices:
  gemini-2.5-flash: {input: 40000, output: 40000}
"""
USAGE = {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}
__all__ = ["ofake", "servers"]  # fixtures, imported to be found
SPENT_SESSION = (
    "Budget exceeded: this session's budget is 20 tokens; spent so far: 24 tokens. A session budget does "
    "not reset: raise it with !/set(budget=...) or remove it with !/unset(budget)."
)


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGemini]:
    with FakeGemini(GEMINI_KEYS, DEFAULT_MODELS) as fake:
        yield fake  # type: ignore[misc]  # FakeServer.__enter__ is typed as the base class


@pytest.fixture(scope="module")
def proxy(openrouter: FakeOpenRouter, gemini: FakeGemini) -> Iterator[ProxyProcess]:
    env = {
        "OPENROUTER_API_KEY": OPENROUTER_KEYS[0],
        "OPENROUTER_API_BASE_URL": openrouter.base_url,
        "GEMINI_API_KEY": GEMINI_KEYS[0],
        "GEMINI_API_BASE_URL": gemini.base_url,
    }
    with ProxyProcess(env=env, config_yaml=SETTINGS) as p:
        yield p


@pytest.fixture
def session() -> str:
    return f"budget-{secrets.token_hex(4)}"


def oai(p: ProxyProcess, session: str) -> openai.OpenAI:
    # The SDKs' own retries stay on: a budget refusal must be one they do not retry.
    return openai.OpenAI(
        base_url=p.base_url, api_key="k", timeout=20, default_headers={"X-Session-ID": session}
    )


def claude(p: ProxyProcess, session: str) -> anthropic.Anthropic:
    base = p.base_url.removesuffix("/v1")
    return anthropic.Anthropic(
        base_url=base, api_key="k", timeout=20, default_headers={"X-Session-ID": session}
    )


def say(c: openai.OpenAI, text: str, model: str = OR_MODEL) -> str:
    answer = c.chat.completions.create(model=model, messages=[{"role": "user", "content": text}])
    return answer.choices[0].message.content or ""


def chat_requests(fake: FakeOpenRouter) -> int:
    return sum(1 for r in fake.requests if r.path.endswith("/chat/completions"))


def test_a_spent_session_budget_is_refused_in_every_front_ends_shape_without_calling_the_provider(
    proxy: ProxyProcess, openrouter: FakeOpenRouter, session: str
) -> None:
    c = oai(proxy, session)
    assert say(c, "!/set(budget=20 tokens) one") == "echo: one"  # 7 + 5 tokens
    assert say(c, "two") == "echo: two"  # starts with 8 left: the one call that may overshoot
    before = chat_requests(openrouter)

    with pytest.raises(openai.APIStatusError) as chat:
        say(c, "three")
    assert chat.value.status_code == 402 and chat.value.code == "budget_exceeded"
    assert chat.value.response.headers["x-should-retry"] == "false"
    assert chat.value.body == {  # type: ignore[comparison-overlap]
        "message": SPENT_SESSION,
        "type": "insufficient_quota",
        "param": None,
        "code": "budget_exceeded",
    }

    with pytest.raises(openai.APIStatusError) as streamed:
        c.chat.completions.create(model=OR_MODEL, messages=[{"role": "user", "content": "x"}], stream=True)
    assert streamed.value.status_code == 402 and SPENT_SESSION in streamed.value.message

    with pytest.raises(anthropic.PaymentRequiredError) as messages:
        claude(proxy, session).messages.create(
            model=OR_MODEL, max_tokens=50, messages=[{"role": "user", "content": "three"}]
        )
    assert messages.value.body == {
        "type": "error",
        "error": {"type": "billing_error", "message": SPENT_SESSION},
    }
    assert messages.value.response.headers["x-should-retry"] == "false"

    with pytest.raises(openai.APIStatusError) as responses:
        c.responses.create(model=OR_MODEL, input="three")
    assert responses.value.status_code == 402 and responses.value.code == "budget_exceeded"
    assert responses.value.body["message"] == SPENT_SESSION  # type: ignore[index]

    assert chat_requests(openrouter) == before  # not one of them reached the provider
    status = say(c, "!/status")
    assert "this session's budget: 0 tokens of 20 tokens left (24 tokens spent)" in status
    assert "this session's budget: 0 tokens of 20 tokens left" in say(c, "!/usage")
    assert say(c, "!/set(budget=1k) three") == "echo: three"  # raised: served again
    assert chat_requests(openrouter) == before + 1


def test_a_streamed_call_counts_when_its_stream_ends(
    proxy: ProxyProcess, openrouter: FakeOpenRouter, session: str
) -> None:
    c = oai(proxy, session)
    say(c, "!/set(budget=12 tokens)")
    chunks = c.chat.completions.create(
        model=OR_MODEL, messages=[{"role": "user", "content": "streamed"}], stream=True
    )
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "echo: streamed"
    # Its usage (7 + 5 chunks) reached the ledger before the stream's end reached the client.
    with pytest.raises(openai.APIStatusError) as refused:
        say(c, "again")
    assert refused.value.status_code == 402 and "spent so far: 12 tokens" in refused.value.message


def test_a_project_daily_budget_from_the_settings_file_holds_for_all_its_sessions(
    proxy: ProxyProcess, gemini: FakeGemini
) -> None:
    gemini.enqueue(*(Reply(text="priced", usage=USAGE) for _ in range(2)))
    first, second = oai(proxy, f"acme-{secrets.token_hex(4)}"), oai(proxy, f"acme-{secrets.token_hex(4)}")
    assert say(first, "!/set(project=acme) a", GM_MODEL) == "priced"  # $0.60
    assert say(second, "!/set(project=acme) b", GM_MODEL) == "priced"  # $0.40 left: may start
    assert len(gemini.generate_requests()) == 2
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    expected = (
        f"Budget exceeded: project 'acme' daily budget is $1.00; spent today (UTC): $1.20. It resets at "
        f"{tomorrow}T00:00:00Z; raise it under budgets: in the settings file."
    )
    with pytest.raises(openai.APIStatusError) as refused:
        say(first, "c", GM_MODEL)
    assert refused.value.status_code == 402 and refused.value.body["message"] == expected  # type: ignore[index]
    with pytest.raises(anthropic.PaymentRequiredError) as messages:
        claude(proxy, "acme-via-claude").messages.create(
            model=GM_MODEL, max_tokens=50, messages=[{"role": "user", "content": "!/set(project=acme) d"}]
        )
    assert messages.value.body["error"]["message"] == expected  # type: ignore[index]
    assert len(gemini.generate_requests()) == 2
    assert "project 'acme' daily budget: $0.00 of $1.00 left ($1.20 spent, resets" in say(first, "!/status")
    assert say(oai(proxy, "no-project"), "e", OR_MODEL) == "echo: e"  # another project's calls go on


def test_a_model_without_a_price_counts_its_tokens_but_not_toward_usd(
    proxy: ProxyProcess, gemini: FakeGemini, session: str
) -> None:
    gemini.enqueue(Reply(text="unpriced", usage=USAGE))
    c = oai(proxy, session)
    assert say(c, "!/set(budget=0.01) hi", "gemini:gemini-2.0-flash") == "unpriced"
    status = say(c, "!/status")
    assert (
        "this session's budget: $0.01 of $0.01 left ($0.00 spent); 1 call(s) without a known price" in status
    )
    say(c, "!/set(budget=15 tokens)")
    with pytest.raises(openai.APIStatusError) as refused:  # its tokens were counted all along
        say(c, "again", "gemini:gemini-2.0-flash")
    assert "spent so far: 15 tokens" in refused.value.message


# -- several instances on one Redis ------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair(servers: Servers, ofake: KeyedOpenRouter) -> Iterator[Team]:
    """Two instances sharing Redis (and PostgreSQL), with a project budget from the environment."""
    t = Team(servers, ofake, 2)
    t.env["LLM_BUDGETS"] = json.dumps({"shared": {"daily": 0.00005}})  # a call of the fake: $0.0000305
    try:
        yield t.start()
    finally:
        t.close()


def test_budgets_hold_across_instances_sharing_redis(pair: Team, ofake: KeyedOpenRouter) -> None:
    session = f"pair-{secrets.token_hex(4)}"
    assert pair.chat(0, "!/set(budget=20 tokens) one", session) == "echo: one"  # 12 tokens, via 0
    assert pair.chat(1, "two", session) == "echo: two"  # the session and its spend, via 1
    for i in (0, 1):
        with pytest.raises(openai.APIStatusError) as refused:
            pair.chat(i, "three", session)
        assert refused.value.status_code == 402 and "spent so far: 24 tokens" in refused.value.message
    # A project budget from the environment, spent across both instances.
    a, b = f"shared-a-{secrets.token_hex(3)}", f"shared-b-{secrets.token_hex(3)}"
    assert pair.chat(0, "!/set(project=shared) x", a) == "echo: x"
    assert pair.chat(1, "!/set(project=shared) y", b, stream=True) == "echo: y"
    calls = sum(1 for r in ofake.requests if r.path.endswith("/chat/completions"))
    with pytest.raises(openai.APIStatusError) as refused:
        pair.chat(0, "z", b)
    assert refused.value.status_code == 402 and "project 'shared' daily budget" in refused.value.message
    assert sum(1 for r in ofake.requests if r.path.endswith("/chat/completions")) == calls
    status = pair.chat(1, "!/status", a)
    assert "project 'shared' daily budget: $0.00 of $0.00005 left ($0.0000" in status  # two calls' worth
    assert not pair.leaks()

"""Usage and cost end to end: a real mitmweb with the addon, both fake upstreams, the official openai and
anthropic SDKs. One scripted session (chat, Messages and Responses, streamed and not, on OpenRouter and
Gemini) whose totals must come out exact in `GET /v1/usage`, in `!/usage`, in each history row and in
each flow's comment in mitmweb; `/v1/usage` is behind the access token like every endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.conftest import OPENROUTER_KEYS
from tests.fakes.fake_gemini import FakeGemini, Reply
from tests.fakes.fake_openrouter import ChatReply, FakeOpenRouter, FakeUsage
from tests.harness import ProxyProcess, wait_for, web_ui

GEMINI_KEYS = ("AIzaSyjBLUUeEP6kavNqhZ4KQOA6ED0rTpOfGb", "AIzaSyKHML_vylz0mU7L631zTndymEHfqXoRac")
TOKEN = "PebJjeGuI7jHBsZUWPyffYH3Htpg4w3i"  # no 8-character run of ordinary text
SESSION = "e2e-usage"
GPT, FLASH = "openrouter:openai/gpt-4o-mini", "gemini:gemini-2.5-flash"
M = 1_000_000


def gemini_usage(prompt: int, out: int, thoughts: int = 0, cached: int = 0) -> dict[str, int]:
    return {"promptTokenCount": prompt, "candidatesTokenCount": out, "thoughtsTokenCount": thoughts,
            "cachedContentTokenCount": cached, "totalTokenCount": prompt + out + thoughts}  # fmt: skip


def flash_cost(prompt: int, completion: int, cached: int = 0) -> float:
    """gemini-2.5-flash at the shipped prices: $0.30 in, $0.03 cached in, $2.50 out per 1M tokens."""
    return ((prompt - cached) * 0.30 + cached * 0.03 + completion * 2.50) / M


# Each call of the session: (what the client does, the upstream's answer, the numbers the proxy must count:
# prompt, completion, cached, reasoning, cost).
CALLS: list[tuple[str, str, Any, tuple[int, int, int, int, float]]] = [
    ("chat", GPT, FakeUsage(194, 30, 100, 12, 0.0042), (194, 30, 100, 12, 0.0042)),
    ("chat-stream", GPT, FakeUsage(50, 10, cost=0.001), (50, 10, 0, 0, 0.001)),
    ("chat-stream-usage", FLASH, gemini_usage(1200, 40, 300, 1000),
     (1200, 340, 1000, 300, flash_cost(1200, 340, 1000))),
    ("messages", FLASH, gemini_usage(500, 20), (500, 20, 0, 0, flash_cost(500, 20))),
    ("messages-stream", GPT, FakeUsage(80, 8, cost=0.0005), (80, 8, 0, 0, 0.0005)),
    ("responses", GPT, FakeUsage(60, 6, cost=0.0003), (60, 6, 0, 0, 0.0003)),
    ("responses-stream", FLASH, gemini_usage(300, 12), (300, 12, 0, 0, flash_cost(300, 12))),
]  # fmt: skip


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGemini]:
    with FakeGemini(GEMINI_KEYS) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(scope="module")
def web(gemini: FakeGemini, openrouter: FakeOpenRouter) -> Iterator[ProxyProcess]:
    env = {
        "GEMINI_API_KEY_1": GEMINI_KEYS[0],
        "GEMINI_API_BASE_URL": gemini.base_url,
        "OPENROUTER_API_KEY_1": OPENROUTER_KEYS[0],
        "OPENROUTER_API_BASE_URL": openrouter.base_url,
        "PROXY_API_KEY": TOKEN,
    }
    with ProxyProcess(env=env, web=True) as p:  # history on: the SQLite history file and its usage table
        yield p


@pytest.fixture(scope="module")
def ui(web: ProxyProcess) -> Iterator[httpx.Client]:
    with web_ui(web) as c:
        yield c


@pytest.fixture(scope="module")
def admin(web: ProxyProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=web.base_url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=10) as c:
        yield c


def openai_client(web: ProxyProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=web.base_url, api_key=TOKEN, max_retries=0,
                         default_headers={"X-Session-ID": SESSION})  # fmt: skip


def _call(web: ProxyProcess, kind: str, model: str) -> str:
    """One call of the script; the text the client got."""
    client, msgs = openai_client(web), [{"role": "user", "content": f"please {kind}"}]
    if kind == "chat":
        return client.chat.completions.create(model=model, messages=msgs).choices[0].message.content or ""
    if kind.startswith("chat-stream"):
        extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if kind.endswith("usage") else {}
        chunks = list(client.chat.completions.create(model=model, messages=msgs, stream=True, **extra))
        assert [c for c in chunks if c.usage] == (chunks[-1:] if extra else [])  # usage only when asked
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    if kind.startswith("responses"):
        if kind.endswith("stream"):
            events = list(client.responses.create(model=model, input=f"please {kind}", stream=True))
            return next(e.response.output_text for e in events if e.type == "response.completed")
        return client.responses.create(model=model, input=f"please {kind}").output_text
    claude = anthropic.Anthropic(base_url=web.base_url.removesuffix("/v1"), api_key=TOKEN, max_retries=0,
                                 default_headers={"X-Session-ID": SESSION})  # fmt: skip
    args: dict[str, Any] = {"model": model, "max_tokens": 64, "messages": msgs}
    if kind.endswith("stream"):
        with claude.messages.stream(**args) as s:
            msg = s.get_final_message()
    else:
        msg = claude.messages.create(**args)
    return "".join(b.text for b in msg.content if b.type == "text")


@pytest.fixture(scope="module")
def session(web: ProxyProcess, gemini: FakeGemini, openrouter: FakeOpenRouter) -> list[str]:
    """The scripted session, run once: the project set first, then every call of CALLS."""
    client = openai_client(web)
    client.chat.completions.create(
        model=GPT, messages=[{"role": "user", "content": "!/set(project=usage-e2e)"}]
    )
    texts = []
    for kind, model, upstream, _ in CALLS:
        if model == GPT:
            openrouter.enqueue(ChatReply(text=f"answer to {kind}", usage=upstream))
        else:
            gemini.enqueue(
                Reply(
                    text=f"answer to {kind}",
                    usage=upstream,
                    thoughts="hmm" if upstream["thoughtsTokenCount"] else None,
                )
            )
        texts.append(_call(web, kind, model))
    return texts


def _sums(rows: list[tuple[int, int, int, int, float]]) -> tuple[int, int, int, int, float]:
    return tuple(sum(r[i] for r in rows) for i in range(5))  # type: ignore[return-value]


def test_every_client_got_its_answer(session: list[str]) -> None:
    assert session == [f"answer to {kind}" for kind, *_ in CALLS]


def test_usage_endpoint_totals_are_exact(session: list[str], admin: httpx.Client) -> None:
    out = admin.get("/usage", params={"session": SESSION, "group_by": ""}).json()
    total = out["total"]
    p, c, cached, reasoning, cost = _sums([n for *_, n in CALLS])
    assert (total["requests"], total["prompt_tokens"], total["completion_tokens"]) == (len(CALLS), p, c)
    assert (total["cached_tokens"], total["reasoning_tokens"], total["unknown_cost"]) == (
        cached,
        reasoning,
        0,
    )
    assert total["cost_usd"] == pytest.approx(cost) and total["cost_complete"] is True
    by_backend = admin.get("/usage", params={"project": "usage-e2e", "group_by": "backend"}).json()
    for group in by_backend["groups"]:
        backend = group["group"]["backend"]
        mine = [n for _, model, _, n in CALLS if model.startswith(backend + ":")]
        assert (group["requests"], group["cost_usd"]) == (len(mine), pytest.approx(_sums(mine)[4]))
    assert {g["group"]["backend"] for g in by_backend["groups"]} == {"gemini", "openrouter"}
    assert admin.get("/usage", params={"since": "2000-01-01", "until": "2000-01-02"}).json()["groups"] == []


def test_usage_endpoint_needs_the_access_token_and_names_bad_parameters(
    web: ProxyProcess, admin: httpx.Client
) -> None:
    assert httpx.get(f"{web.base_url}/usage", timeout=10).status_code == 401
    r = admin.get("/usage", params={"until": "soon"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "until"
    assert admin.post("/usage").status_code == 405


def test_usage_command(session: list[str], web: ProxyProcess) -> None:
    answer = openai_client(web).chat.completions.create(
        model=GPT, messages=[{"role": "user", "content": "!/usage"}]
    )
    lines = (answer.choices[0].message.content or "").splitlines()
    p, c, cached, reasoning, cost = _sums([n for *_, n in CALLS])
    tokens = f"{p:,} in ({cached:,} cached) + {c:,} out ({reasoning:,} reasoning) = {p + c:,} tokens"
    mine = f"{len(CALLS)} calls · {tokens} · ${cost:.6f}"
    assert lines[1] == f"this session: {mine}" and lines[2] == f"project usage-e2e: {mine}"
    assert lines[3].startswith("today (") and "UTC, all sessions): " in lines[3]


def test_history_rows_carry_tokens_and_cost(session: list[str], admin: httpx.Client) -> None:
    rows = admin.get(f"/sessions/{SESSION}/history").json()["data"]
    answered = [r for r in rows if r["answered_by"] == "backend"]
    names = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens", "cost_usd")
    got = [tuple(r[n] for n in names) for r in answered]
    want = [n for *_, n in CALLS]
    assert [g[:4] for g in got] == [w[:4] for w in want]
    assert [g[4] for g in got] == pytest.approx([w[4] for w in want])
    proxy = [r for r in rows if r["answered_by"] == "proxy"]
    assert proxy and all(r["cost_usd"] is None and r["prompt_tokens"] is None for r in proxy)


def test_flow_comments_show_each_calls_tokens_and_cost(session: list[str], ui: httpx.Client) -> None:
    def calls() -> list[str]:
        flows = ui.get("/flows").json()
        return [f["comment"] for f in flows if f"session {SESSION}" in (f.get("comment") or "")
                and " key " in f["comment"]]  # fmt: skip

    assert wait_for(lambda: len(calls()) >= len(CALLS), timeout=30)
    comments = calls()
    for comment, (kind, _, _, (p, c, _, _, cost)) in zip(comments, CALLS, strict=True):
        assert f"tokens {p}+{c}={p + c}" in comment, (kind, comment)
        assert f"· ${cost:.6f}" in comment, (kind, comment)

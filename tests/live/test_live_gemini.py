"""Live round trips through the proxy against Google's real Gemini API. Opt-in, never in CI.

    GEMINI_API_KEY_1=AIza... .venv/bin/python -m pytest -m live tests/live

Deselected by default (`-m 'not live'` in pyproject), skipped without GEMINI_API_KEY_1 and whenever CI is
set. The model is `gemini-2.5-flash-lite` (cheap, free tier) unless LLM_LIVE_GEMINI_MODEL names another;
the run makes about ten small requests. Keys never reach output: they live in values whose repr is
hidden, are scrubbed from the proxy log before it is printed, and appear in no assertion.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator

import openai
import pytest
from pydantic import BaseModel

from tests.harness import ProxyProcess

GEMINI_BASE_URL = "https://generativelanguage.googleapis.com"
MODEL = os.environ.get("LLM_LIVE_GEMINI_MODEL") or "gemini-2.5-flash-lite"
_KEY_VAR = re.compile(r"^GEMINI_API_KEY(_([1-9]|1[0-9]|20))?$")

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("GEMINI_API_KEY_1"), reason="GEMINI_API_KEY_1 is not set"),
    pytest.mark.skipif(bool(os.environ.get("CI")), reason="live tests never run in CI"),
]


class _Hidden(str):
    """A key: usable as a string, shown as <redacted> by repr (pytest -l, dict reprs, tracebacks)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<redacted>'"


def _keys() -> dict[str, _Hidden]:
    return {name: _Hidden(value) for name, value in os.environ.items() if _KEY_VAR.match(name) and value}


def scrub(text: str) -> str:
    """Text with every configured key (and near-whole pieces of one) replaced."""
    for key in _keys().values():
        for piece in (str(key), key[:-4], key[4:]):
            if len(piece) >= 8:
                text = text.replace(piece, "<redacted>")
    return text


def _leaked(text: str) -> bool:
    return scrub(text) != text


@pytest.fixture(scope="module")
def live_proxy() -> Iterator[ProxyProcess]:
    env: dict[str, str] = {
        **{k: v for k, v in _keys().items() if k != "GEMINI_API_KEY"},
        "LLM_BACKEND": "gemini",
        "GEMINI_API_BASE_URL": GEMINI_BASE_URL,
        "PROXY_TIMEOUT": "60",
        "LLM_DISCOVERY_TIMEOUT": "30",
    }
    p = ProxyProcess(env=env)
    try:
        p.start(timeout=60)
    except RuntimeError:
        print(scrub(p.log))
        pytest.fail("the proxy did not start; its (scrubbed) log is printed above", pytrace=False)
    try:
        yield p
    finally:
        p.stop()
        print(scrub(p.log))  # shown by pytest for failing tests, or with -s
    assert not _leaked(p.log), "a Gemini key appeared in the proxy log"


@pytest.fixture
def client(live_proxy: ProxyProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=live_proxy.base_url, api_key="unused", max_retries=0, timeout=90) as c:
        yield c


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current temperature in a city, in degrees Celsius.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name, e.g. Paris"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def test_live_model_is_listed(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert MODEL in ids


def test_live_plain(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "You answer with exactly one lowercase word."},
            {"role": "user", "content": "Reply with the word: pong"},
        ],
        max_tokens=50,
    )
    choice = r.choices[0]
    assert choice.finish_reason == "stop"
    assert "pong" in (choice.message.content or "").lower()
    assert r.usage is not None and r.usage.prompt_tokens > 0 and r.usage.total_tokens > r.usage.prompt_tokens


def test_live_stream(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Count from 1 to 20, separated by spaces."}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "1" in text and "20" in text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_live_tool_round_trip(client: openai.OpenAI) -> None:
    messages: list[dict] = [{"role": "user", "content": "What is the temperature in Paris right now?"}]
    r = client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER], tool_choice="required"
    )  # type: ignore[arg-type,list-item]
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert calls and calls[0].function.name == "get_weather"
    assert "paris" in json.loads(calls[0].function.arguments).get("city", "").lower()
    messages.append(choice.message.model_dump(exclude_none=True))
    messages += [{"role": "tool", "tool_call_id": c.id, "content": '{"celsius": 17}'} for c in calls]
    r2 = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])  # type: ignore[arg-type,list-item]
    assert r2.choices[0].finish_reason == "stop"
    assert "17" in (r2.choices[0].message.content or "")


def test_live_streamed_tool_call(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Rome?"}],
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="required",
        stream=True,
    )
    chunks = list(stream)
    deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert deltas and deltas[0].index == 0 and deltas[0].id and deltas[0].function
    assert deltas[0].function.name == "get_weather"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


class City(BaseModel):
    name: str
    country: str
    population_millions: float
    landmarks: list[str]


def test_live_json_schema(client: openai.OpenAI) -> None:
    r = client.chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": "Describe Paris: name, country, population, 3 landmarks."}],
        response_format=City,
    )
    city = r.choices[0].message.parsed
    assert city is not None and city.name.lower() == "paris"
    assert len(city.landmarks) >= 1
    # propertyOrdering: Gemini keeps the declared key order instead of sorting the keys.
    assert list(json.loads(r.choices[0].message.content or "{}")) == list(City.model_fields)


def test_live_nested_free_form_object_in_tool_schema(client: openai.OpenAI) -> None:
    """A map-like argument (`additionalProperties` only) becomes a bare nested OBJECT: does Google take it?

    Real MCP tools look like this. If Google answers 400 "properties: should be non-empty for OBJECT
    type", translators/gemini.py must express such objects differently.
    """
    tool = {
        "type": "function",
        "function": {
            "name": "search",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string"},
                    "filters": {"type": "object", "additionalProperties": {"type": "string"}},
                },
                "required": ["query"],
            },
        },
    }
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Search for 'mitmproxy'."}],
        tools=[tool],  # type: ignore[list-item]
    )
    assert r.choices[0].finish_reason in ("tool_calls", "stop")

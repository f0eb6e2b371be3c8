"""mitmweb shows every LLM flow: comment, mark, the request that really left, the streamed answer."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.conftest import OPENROUTER_KEYS
from tests.harness import ProxyProcess, wait_for, web_ui

MODEL = "openai/gpt-4o-mini"


@pytest.fixture(scope="module")
def ui(web: ProxyProcess) -> Iterator[httpx.Client]:
    with web_ui(web) as c:
        yield c


def _flows(ui: httpx.Client) -> list[dict]:
    return ui.get("/flows").json()


def _command(ui: httpx.Client, name: str) -> str:
    r = ui.post(f"/commands/{name}", json={"arguments": []})
    r.raise_for_status()
    return r.json()["value"]


def test_flows_in_mitmweb(web: ProxyProcess, ui: httpx.Client) -> None:
    client = openai.OpenAI(
        base_url=web.base_url,
        api_key="client-secret-token",
        max_retries=0,
        default_headers={"X-Session-ID": "web"},
    )
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "plain one"}])
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "streamed one"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        if c.choices
    )
    assert text == "echo: streamed one"
    assert wait_for(lambda: len([f for f in _flows(ui) if f.get("comment")]) >= 2)
    flows = [f for f in _flows(ui) if f.get("comment")]
    plain, streamed = flows[-2], flows[-1]
    for f in (plain, streamed):
        assert f["marked"]
        assert "session web" in f["comment"]
        assert f"openrouter:{MODEL}" in f["comment"] and "key OPENROUTER_API_KEY_" in f["comment"]
        assert "tokens 7+" in f["comment"]
        headers = dict((k.lower(), v) for k, v in f["request"]["headers"])
        assert headers["authorization"] == "********"  # masked in the UI...
        assert f["request"]["path"] == "/api/v1/chat/completions"  # ...and it shows what really left
    body = ui.get(f"/flows/{streamed['id']}/response/content.data").text
    assert json.loads(body)["choices"][0]["message"]["content"] == "echo: streamed one"
    sent = ui.get(f"/flows/{plain['id']}/request/content.data").json()
    assert sent["model"] == MODEL and sent["messages"] == [{"role": "user", "content": "plain one"}]
    everything = json.dumps(_flows(ui))
    assert not any(k in everything for k in OPENROUTER_KEYS)
    assert "client-secret-token" not in everything


def test_llm_commands_from_the_command_bar(ui: httpx.Client) -> None:
    status = _command(ui, "llm.status")
    assert "OPENROUTER_API_KEY_1" in status and "cooldowns" in status
    assert not any(k in status for k in OPENROUTER_KEYS)
    assert "no failover routes" in _command(ui, "llm.routes")
    assert "web: model=" in _command(ui, "llm.sessions")

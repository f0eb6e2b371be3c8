"""Finding 1: mitmweb's API. Unauthenticated calls are refused, provider base URLs cannot be redirected at
runtime even with the UI's password, and a web UI beyond loopback needs PROXY_API_KEY like the proxy."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.harness import ProxyProcess, wait_for, web_ui
from tests.security.netns import private_net

MODEL = "openai/gpt-4o-mini"


@pytest.fixture(scope="module")
def attacker() -> Iterator[FakeOpenRouter]:
    """Where an attacker would like the keys to go: records every request, accepts none."""
    with FakeOpenRouter(()) as fake:
        yield fake


def _chat(p: ProxyProcess, text: str, stream: bool = False) -> str:
    with openai.OpenAI(base_url=p.base_url, api_key="client", max_retries=0, timeout=20) as client:
        messages = [{"role": "user", "content": text}]
        if not stream:
            return client.chat.completions.create(model=MODEL, messages=messages).choices[0].message.content
        chunks = client.chat.completions.create(model=MODEL, messages=messages, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_web_api_refuses_unauthenticated_requests(web: ProxyProcess, attacker: FakeOpenRouter) -> None:
    _chat(web, "a flow worth stealing")
    for password in ("", "guessed-password"):
        with web_ui(web, password=password) as ui:
            flows = ui.get("/flows")
            assert flows.status_code == 403 and "a flow worth stealing" not in flows.text
            put = ui.put("/options", json={"openrouter_api_base_url": attacker.base_url})
            assert put.status_code == 403
            assert ui.get(f"/flows?token={password}").status_code == 403
    with web_ui(web) as ui:
        options = ui.get("/options").json()
    assert options["openrouter_api_base_url"]["value"] is None  # never set: the URL comes from the env
    assert attacker.requests == []


def test_base_urls_cannot_be_changed_at_runtime(
    web: ProxyProcess, openrouter: FakeOpenRouter, attacker: FakeOpenRouter
) -> None:
    with web_ui(web) as ui:
        for option in ("openrouter_api_base_url", "gemini_api_base_url", "llm_env_file", "llm_config"):
            before = ui.get("/options").json()[option]["value"]
            value = attacker.base_url if option.endswith("_url") else "/tmp/attacker-controlled"
            r = ui.put("/options", json={option: value})
            assert r.status_code == 400 and "start-up only" in r.text, (option, r.text)
            refused = f"refused a runtime change of {option}="
            assert wait_for(lambda r=refused: any(r in line for line in web.lines))
            assert ui.get("/options").json()[option]["value"] == before  # rolled back
        # Options that do not decide where keys go still change at runtime, and rebuild with the old URL.
        assert ui.put("/options", json={"proxy_timeout": "7"}).status_code == 200
    assert _chat(web, "still mine") == "echo: still mine"
    assert _chat(web, "streamed", stream=True) == "echo: streamed"
    assert wait_for(lambda: len([r for r in openrouter.requests if r.path.endswith("/completions")]) >= 2)
    assert attacker.requests == []  # no discovery, no chat, no key


def test_web_host_beyond_loopback_needs_a_token() -> None:
    with private_net() as net:
        # The proxy stays on loopback: only mitmweb's UI would be reachable from the network.
        p = ProxyProcess(
            env={}, web=True, wrap=net.wrap([]), extra_args=["--web-host", net.address], wait_ready=False
        ).start()
        try:
            assert p.wait_exit(30) == 1, p.log
        finally:
            p.stop()
        assert f"refusing to listen on {net.address} without an access token" in p.log
        assert "Web server listening" not in p.log

        with ProxyProcess(
            env={"PROXY_API_KEY": "lan-token-Q7vK2mXp9RtW4zLc"},  # high-entropy: see tests/harness.py leaks()
            web=True,
            wrap=net.wrap([]),
            extra_args=["--web-host", net.address],
        ) as p:
            # From inside the namespace, the UI on the LAN address still wants its own password.
            probe = net.python(
                "import httpx, json\n"
                f"url = 'http://{net.address}:{p.web_port}/options'\n"
                "anon = httpx.get(url, trust_env=False, timeout=20).status_code\n"
                f"auth = httpx.get(url, headers={{'authorization': 'Bearer {p.web_password}'}},"
                " trust_env=False, timeout=20).status_code\n"
                "print(json.dumps([anon, auth]))\n"
            )
            assert probe.returncode == 0, probe.stderr
            assert json.loads(probe.stdout) == [403, 200]

"""The two fences of the agent tests: the sink refuses and names whatever a CLI sends past loopback, and
the guard in the agents' proxy refuses (and `troubles` reports) whatever the proxy would let out."""

# The fixtures are imported from tests/agents/fixtures.py, so test parameters "redefine" them by design.
# ruff: noqa: F811

from __future__ import annotations

import ssl

import httpx
import pytest

from tests.agents.fixtures import agent_proxy, gemini, sink  # noqa: F401
from tests.agents.guard_addon import GUARD_MARK
from tests.agents.proxy import troubles
from tests.agents.sink import Sink
from tests.harness import ProxyProcess


def test_the_sink_refuses_and_records_every_target(sink: Sink) -> None:
    with httpx.Client(proxy=sink.url, trust_env=False, timeout=10) as c:
        with pytest.raises(httpx.ProxyError):
            c.get("https://api.example.test/v1/models")
        assert c.post("http://telemetry.example.test/collect", content=b"x").status_code == 403
    assert sink.targets == ["CONNECT api.example.test:443", "POST http://telemetry.example.test/collect"]


def test_the_guard_refuses_what_the_proxy_would_let_out(agent_proxy: ProxyProcess) -> None:
    since = len(agent_proxy.lines)
    ctx = ssl.create_default_context(cafile=agent_proxy.ca_cert)
    with httpx.Client(proxy=agent_proxy.proxy_url, verify=ctx, trust_env=False, timeout=20) as c:
        assert c.get("https://api.openai.com/v1/models").status_code == 200  # the proxy's own answer
        assert troubles(agent_proxy, since) == []
        with pytest.raises(httpx.ConnectError):  # a host it does not intercept: a TLS tunnel, refused
            c.get("https://statsig.example.test/v1/initialize")
        assert c.get("http://telemetry.example.test/collect").status_code == 502
    found = troubles(agent_proxy, since)
    assert found and all(GUARD_MARK in line for line in found)
    for target in ("statsig.example.test:443", "telemetry.example.test:80"):
        assert f"server connection to {target} killed before connect" in "\n".join(found)

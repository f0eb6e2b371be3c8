"""Codex, the real CLI (pinned, installed by tests/agents/install.py), through the proxy.

One turn each: `codex exec` asks, the model (a fake upstream, scripted by tests/agents/turn.py) calls
exec_command with a command whose output only a real run can produce, Codex runs it (in its own
sandbox) and sends the output back, and the model's answer quotes it. The CLI runs offline: a scratch
home and CODEX_HOME, no inherited variables, plugins and analytics off, every request not for
127.0.0.1 refused by a sink (or, in explicit-proxy mode, by the guard in the proxy).

The first test runs Codex against a scripted Responses stand-in, without the proxy: it proves the
plumbing, and its assertions record everything Codex sends in such a session.
"""

# The fixtures are imported from tests/agents/fixtures.py, so test parameters "redefine" them by design.
# ruff: noqa: F811

from __future__ import annotations

import json

import pytest

from tests.agents import turn
from tests.agents.clis import EXEC_INPUT, MARKER, codex, codex_env
from tests.agents.fixtures import agent_proxy, gemini, scratch, scripted, sink  # noqa: F401
from tests.agents.proxy import CODEX_ON_GEMINI, CODEX_ON_OPENROUTER, troubles
from tests.agents.run import Scratch, run
from tests.agents.scripted import ScriptedAgentServer
from tests.agents.sink import Sink
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.harness import ProxyProcess

pytestmark = pytest.mark.timeout(600)  # a first run installs the CLI (hundreds of MB) before it starts
MODELS = {"gemini": CODEX_ON_GEMINI, "openrouter": CODEX_ON_OPENROUTER}


def test_codex_runs_offline_against_a_scripted_responses_api(
    scripted: ScriptedAgentServer, sink: Sink, scratch: Scratch
) -> None:
    env = codex_env(scratch, sink.url, base_url=scripted.root_url + "/v1")
    outcome = run(codex(CODEX_ON_GEMINI), scratch, env)
    assert outcome.returncode == 0, outcome
    assert MARKER in outcome.stdout, outcome
    # A custom provider's session is these two calls and nothing else: no /v1/models, no compaction.
    assert [(r.method, r.path) for r in scripted.requests] == [("POST", "/v1/responses")] * 2
    first, second = (r.json() for r in scripted.requests)
    assert first["stream"] is True and first["model"] == CODEX_ON_GEMINI and first["store"] is False
    exec_command = next(t for t in first["tools"] if t.get("name") == "exec_command")
    assert set(EXEC_INPUT) <= set(exec_command["parameters"]["properties"])
    output = next(i for i in second["input"] if i.get("type") == "function_call_output")
    assert output["call_id"] == "call_scripted_1" and MARKER in json.dumps(output["output"])
    assert sink.targets == []


@pytest.mark.parametrize("backend", turn.BACKENDS)
def test_tool_turn_through_the_proxy(
    backend: str,
    agent_proxy: ProxyProcess,
    gemini: FakeGemini,
    openrouter: FakeOpenRouter,
    sink: Sink,
    scratch: Scratch,
) -> None:
    since = len(agent_proxy.lines)
    turn.script(backend, "exec_command", EXEC_INPUT, gemini, openrouter)
    env = codex_env(scratch, sink.url, base_url=agent_proxy.base_url)
    outcome = run(codex(MODELS[backend]), scratch, env)
    turn.check(outcome, backend, "exec_command", EXEC_INPUT, gemini, openrouter)
    assert sink.targets == []
    assert troubles(agent_proxy, since) == []


def test_tool_turn_in_explicit_proxy_mode(
    agent_proxy: ProxyProcess, gemini: FakeGemini, openrouter: FakeOpenRouter, scratch: Scratch
) -> None:
    """The built-in `openai` provider with an API key: Codex talks to https://api.openai.com through the
    proxy, trusting its CA (CODEX_CA_CERTIFICATE; SSL_CERT_FILE works too). It tries a Responses
    WebSocket first (GET /v1/responses with Upgrade: websocket): a 426 answer makes it fall back to
    HTTPS at once, any other costs five retries (seconds) per session. api.openai.com is never
    contacted."""
    since = len(agent_proxy.lines)
    turn.script("gemini", "exec_command", EXEC_INPUT, gemini, openrouter)
    env = codex_env(scratch, agent_proxy.proxy_url, ca=agent_proxy.ca_cert)
    outcome = run(codex(CODEX_ON_GEMINI), scratch, env)
    turn.check(outcome, "gemini", "exec_command", EXEC_INPUT, gemini, openrouter)
    assert troubles(agent_proxy, since) == []
    assert "Reconnecting" not in outcome.stderr, f"Codex retried its WebSocket handshake:\n{outcome}"

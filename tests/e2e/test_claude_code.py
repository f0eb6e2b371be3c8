"""Claude Code, the real CLI (pinned, installed by tests/agents/install.py), through the proxy.

One turn each: `claude -p` asks, the model (a fake upstream, scripted by tests/agents/turn.py) calls
Bash with a command whose output only a real run can produce, Claude Code runs it and sends the
output back, and the model's answer quotes it. The CLI runs offline: a scratch home, no inherited
variables, every request not for 127.0.0.1 refused by a sink (or, in explicit-proxy mode, by the guard
in the proxy, tests/agents/guard_addon.py).

The first test runs Claude Code against a scripted Anthropic stand-in, without the proxy: it proves
the plumbing, and its assertions record everything Claude Code sends in such a session.
"""

# The fixtures are imported from tests/agents/fixtures.py, so test parameters "redefine" them by design.
# ruff: noqa: F811

from __future__ import annotations

import pytest

from tests.agents import turn
from tests.agents.clis import BASH_INPUT, MARKER, claude_code, claude_code_env
from tests.agents.fixtures import agent_proxy, gemini, scratch, scripted, sink  # noqa: F401
from tests.agents.proxy import CLAUDE_ON_GEMINI, CLAUDE_ON_OPENROUTER, root_url, troubles
from tests.agents.run import Scratch, run
from tests.agents.scripted import ScriptedAgentServer
from tests.agents.sink import Sink
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.harness import ProxyProcess

pytestmark = pytest.mark.timeout(600)  # a first run installs the CLI (hundreds of MB) before it starts
MODELS = {"gemini": CLAUDE_ON_GEMINI, "openrouter": CLAUDE_ON_OPENROUTER}


def test_claude_code_runs_offline_against_a_scripted_anthropic(
    scripted: ScriptedAgentServer, sink: Sink, scratch: Scratch
) -> None:
    env = claude_code_env(scratch, sink.url, base_url=scripted.root_url)
    outcome = run(claude_code(CLAUDE_ON_GEMINI), scratch, env)
    assert outcome.returncode == 0, outcome
    assert MARKER in outcome.stdout, outcome
    # A -p session with a base URL is these two calls and nothing else: no count_tokens, no GET.
    assert [(r.method, r.path) for r in scripted.requests] == [("POST", "/v1/messages?beta=true")] * 2
    first, second = (r.json() for r in scripted.requests)
    assert first["stream"] is True and first["model"] == CLAUDE_ON_GEMINI
    assert "Bash" in {t["name"] for t in first["tools"]}
    result = second["messages"][-1]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_scripted_1"
    assert MARKER in str(result["content"])
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
    turn.script(backend, "Bash", BASH_INPUT, gemini, openrouter)
    env = claude_code_env(scratch, sink.url, base_url=root_url(agent_proxy))
    outcome = run(claude_code(MODELS[backend]), scratch, env)
    turn.check(outcome, backend, "Bash", BASH_INPUT, gemini, openrouter)
    assert sink.targets == []
    assert troubles(agent_proxy, since) == []


def test_tool_turn_in_explicit_proxy_mode(
    agent_proxy: ProxyProcess, gemini: FakeGemini, openrouter: FakeOpenRouter, scratch: Scratch
) -> None:
    """No base URL: Claude Code talks to https://api.anthropic.com through the proxy, trusting its CA.
    The proxy answers everything itself; api.anthropic.com is never contacted (Claude Code also asks
    it for /api/claude_code/settings and /api/claude_code/policy_limits in this mode)."""
    since = len(agent_proxy.lines)
    turn.script("gemini", "Bash", BASH_INPUT, gemini, openrouter)
    env = claude_code_env(scratch, agent_proxy.proxy_url, ca=agent_proxy.ca_cert)
    outcome = run(claude_code(CLAUDE_ON_GEMINI), scratch, env)
    turn.check(outcome, "gemini", "Bash", BASH_INPUT, gemini, openrouter)
    assert troubles(agent_proxy, since) == []

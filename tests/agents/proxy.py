"""The proxy the agent CLIs talk to in tests: real mitmdump with the addon on both fake upstreams, a
`model_map` that sends each CLI model name to one backend, api.anthropic.com and api.openai.com
intercepted, and tests/agents/guard_addon.py refusing every connection that would leave the machine."""

from __future__ import annotations

import re
from pathlib import Path

from tests.agents.guard_addon import GUARD_MARK
from tests.conftest import OPENROUTER_KEYS
from tests.e2e.test_gemini_path import GEMINI_KEYS
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.harness import ProxyProcess

# CLI model name -> what answers it (the fake's own model names: the proxy checks them on discovery).
CLAUDE_ON_GEMINI = "claude-sonnet-4-6"
CLAUDE_ON_OPENROUTER = "claude-opus-4-6"
CODEX_ON_GEMINI = "gpt-5.1-codex"
CODEX_ON_OPENROUTER = "gpt-5-codex"
MODEL_MAP = {
    CLAUDE_ON_GEMINI: "gemini:gemini-2.5-flash",
    CLAUDE_ON_OPENROUTER: "openrouter:anthropic/claude-3.5-sonnet",
    CODEX_ON_GEMINI: "gemini:gemini-2.5-flash",
    CODEX_ON_OPENROUTER: "openrouter:openai/gpt-4o-mini",
}
GUARD = Path(__file__).with_name("guard_addon.py")
_CONNECT = re.compile(r"server connect (\S+)|error establishing server connection.*")
_LOOPBACK = re.compile(r"^(127\.\d+\.\d+\.\d+|localhost|\[::1\]):\d+$")
_INTERNAL = re.compile(r"internal error|Traceback")


def configure(gemini: FakeGemini, openrouter: FakeOpenRouter) -> ProxyProcess:
    """The proxy, not yet started (`with configure(...) as p:` starts and stops it)."""
    env = {
        "GEMINI_API_KEY_1": GEMINI_KEYS[0],
        "GEMINI_API_BASE_URL": gemini.base_url,
        "OPENROUTER_API_KEY_1": OPENROUTER_KEYS[0],
        "OPENROUTER_API_BASE_URL": openrouter.base_url,
        "LLM_INTERCEPT_HOSTS": "api.openai.com,api.anthropic.com",
        "PROXY_TIMEOUT": "20",
    }
    config = "model_map:\n" + "".join(f'  "{k}": "{v}"\n' for k, v in MODEL_MAP.items())
    return ProxyProcess(env=env, config_yaml=config, extra_args=["-s", str(GUARD)])


def troubles(proxy: ProxyProcess, since: int = 0) -> list[str]:
    """Log lines (from line `since` on) of an internal error, or of the proxy reaching or trying to reach
    beyond loopback (the guard refuses those connections, and mitmproxy logs each)."""
    found = []
    for line in proxy.lines[since:]:
        m = _CONNECT.search(line)
        outside = m is not None and not (m.group(1) and _LOOPBACK.match(m.group(1)))
        if outside or GUARD_MARK in line or _INTERNAL.search(line):
            found.append(line)
    return found


def root_url(proxy: ProxyProcess) -> str:
    """The proxy without `/v1`, for clients that add it themselves (Claude Code)."""
    return f"http://127.0.0.1:{proxy.reverse_port}"

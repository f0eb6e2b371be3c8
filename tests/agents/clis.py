"""How the tests start each CLI for one turn: a prompt, one shell command run through the CLI's own tool,
and an answer quoting what the command printed.

The command prints MARKER without containing it (`printf 'MARKER-%s' 123`), so an answer that holds
MARKER proves the command really ran and its output went back upstream, rather than the model's own
tool-call arguments being repeated.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.agents.install import CLAUDE_CODE, CODEX, ensure
from tests.agents.run import Scratch, environment

MARKER = "MARKER-123"
COMMAND = "printf 'MARKER-%s\\n' 123"
PROMPT = "Run the marker command and tell me what it printed."
# The agent key a user would have: it must never reach an upstream (the proxy supplies its own keys).
CLIENT_KEY = "sk-client-own-key-9f3c1a7e5b2d"

# -- Claude Code ----------------------------------------------------------------------------------------

BASH_INPUT = {"command": COMMAND, "description": "Print the marker"}


def claude_code(model: str) -> list[str]:
    # -p never asks: besides what Claude Code deems read-only, only this command may run; others are refused.
    return [*ensure(CLAUDE_CODE), "-p", PROMPT, "--model", model, "--allowedTools", f"Bash({COMMAND})"]


def claude_code_env(
    scratch: Scratch, via: str, base_url: str | None = None, ca: Path | None = None
) -> dict[str, str]:
    """`base_url` (no /v1: the CLI adds it) for the base-URL mode; else explicit-proxy mode through `via`
    trusting `ca`, with the CLI hard-wired to api.anthropic.com."""
    extra = {"ANTHROPIC_API_KEY": CLIENT_KEY}
    if base_url:
        extra["ANTHROPIC_BASE_URL"] = base_url
    if ca:
        extra["NODE_EXTRA_CA_CERTS"] = str(ca)
    return environment(scratch, via, **extra)


# -- Codex ----------------------------------------------------------------------------------------------

EXEC_INPUT = {"cmd": COMMAND}
# Off: plugin discovery (api.github.com, chatgpt.com), analytics (ab.chatgpt.com) and, for the built-in
# provider, the model list an API key fetches from chatgpt.com. Nothing else leaves in 0.171.0.
_QUIET = """
[features]
plugins = false
api_key_model_discovery = false

[analytics]
enabled = false
"""


def codex(model: str) -> list[str]:
    return [*ensure(CODEX), "exec", "--skip-git-repo-check", "--model", model, PROMPT]


def codex_env(
    scratch: Scratch, via: str, base_url: str | None = None, ca: Path | None = None
) -> dict[str, str]:
    """`base_url` (with /v1): a custom provider speaking Responses there, no retries; else the built-in
    `openai` provider (api.openai.com) with an API key, through `via` trusting `ca`."""
    home = scratch.home / ".codex"
    home.mkdir()
    config = _QUIET
    if base_url:
        provider = {
            "name": "proxy",
            "base_url": base_url,
            "env_key": "PROXY_KEY",
            "wire_api": "responses",
            "request_max_retries": 0,
            "stream_max_retries": 0,
        }
        lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in provider.items())
        config = f'model_provider = "proxy"\n{config}\n[model_providers.proxy]\n{lines}\n'
    (home / "config.toml").write_text(config)
    extra = {"CODEX_HOME": str(home), "PROXY_KEY" if base_url else "OPENAI_API_KEY": CLIENT_KEY}
    if ca:
        extra["CODEX_CA_CERTIFICATE"] = str(ca)
    return environment(scratch, via, **extra)

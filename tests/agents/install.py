"""The real agent CLIs for end-to-end tests: a pinned npm package, installed once into a cache folder.

    argv = ensure(CLAUDE_CODE)   # ["node", ".../cli-wrapper.cjs"]; add the CLI's own arguments
    argv = ensure(CODEX)         # [".../vendor/<target>/bin/codex"]

The cache is `$LLM_INTERCEPT_AGENT_CACHE` or `<repo>/.cache/agents`, one folder per package and version
(`claude-code-2.1.332`). Two pytest processes may install at once (run_tests.sh runs a Python each): a
file lock lets one install while the other waits, and the install lands in a temporary folder that is
renamed into place only when complete, so no process ever sees half a package.

Without `node` and `npm` the tests skip; with them, a failed install fails the test with npm's output.
Installing from the npm registry is the only network access here: the CLIs themselves run offline.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE_VARIABLE = "LLM_INTERCEPT_AGENT_CACHE"
INSTALL_TIMEOUT = 600.0  # seconds: each package carries a native binary of a few hundred MB


@dataclass(frozen=True)
class Agent:
    name: str  # the cache folder's stem
    package: str
    version: str
    # The command that starts the CLI, from the folder npm installed into (its `--prefix`).
    entry: Callable[[Path], list[str]]

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"


def _claude_code(prefix: Path) -> list[str]:
    # npm here runs no install scripts (we pass --ignore-scripts anyway), so bin/claude.exe may be the
    # package's placeholder; the wrapper finds the platform package's binary itself.
    wrapper = prefix / "node_modules/@anthropic-ai/claude-code/cli-wrapper.cjs"
    return [_which("node"), str(wrapper)] if wrapper.is_file() else []


def _codex(prefix: Path) -> list[str]:
    # npm installs only the optional dependency that matches this platform, with one native binary.
    found = sorted(prefix.glob("node_modules/@openai/codex-*/vendor/*/bin/codex"))
    return [str(found[0])] if len(found) == 1 else []


CLAUDE_CODE = Agent("claude-code", "@anthropic-ai/claude-code", "2.1.332", _claude_code)
CODEX = Agent("codex", "@openai/codex", "0.171.0", _codex)


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_VARIABLE) or ROOT / ".cache" / "agents")


def ensure(agent: Agent, root: Path | None = None) -> list[str]:
    """The command that runs `agent`, installing it first if the cache lacks it."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{agent.spec} needs `{tool}` on PATH to install and run")
    root = root or cache_root()
    root.mkdir(parents=True, exist_ok=True)
    prefix = root / f"{agent.name}-{agent.version}"
    with (root / f"{prefix.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        if not prefix.exists():
            _install(agent, root, prefix)
    argv = agent.entry(prefix)
    if not argv:
        pytest.fail(f"{agent.spec} is in {prefix} but its entry point is not: remove the folder to reinstall")
    return argv


def _install(agent: Agent, root: Path, prefix: Path) -> None:
    staging = Path(tempfile.mkdtemp(prefix=f".{prefix.name}-", dir=root))
    try:
        cmd = [_which("npm"), "install", "--prefix", str(staging), "--no-audit", "--no-fund"]
        cmd += ["--ignore-scripts", agent.spec]
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"`{' '.join(cmd)}` took over {INSTALL_TIMEOUT:.0f} s; output:\n{e.output}{e.stderr}")
        if done.returncode != 0:
            pytest.fail(f"`{' '.join(cmd)}` failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        if not agent.entry(staging):
            pytest.fail(f"{agent.spec} installed without its entry point in {staging}:\n{done.stdout}")
        staging.rename(prefix)  # atomic: the folder appears complete or not at all
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone after the rename; a failed attempt's leftovers


def _which(tool: str) -> str:
    path = shutil.which(tool)
    assert path is not None, f"{tool} vanished from PATH"
    return path

"""tests/agents/run.py: the CLI sees only what the test gives it, and a hung CLI is killed with all it
started."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.agents.run import Scratch, environment, run
from tests.harness import wait_for


def test_the_environment_is_chosen_not_inherited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-developers-own")
    monkeypatch.setenv("HTTPS_PROXY", "http://corporate-proxy:3128")
    monkeypatch.setenv("CODEX_HOME", "/home/dev/.codex")
    scratch = Scratch.make(tmp_path)
    env = environment(scratch, "http://127.0.0.1:9", ANTHROPIC_BASE_URL="http://127.0.0.1:8")
    assert "OPENAI_API_KEY" not in env and "CODEX_HOME" not in env
    assert env["HTTPS_PROXY"] == env["https_proxy"] == env["ALL_PROXY"] == "http://127.0.0.1:9"
    assert env["HOME"] == str(scratch.home) and env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8"
    out = run(["sh", "-c", "pwd; env"], scratch, env)
    assert out.returncode == 0 and out.stdout.splitlines()[0] == str(scratch.work)
    assert "sk-developers-own" not in out.stdout and "corporate-proxy" not in out.stdout


def test_a_hung_cli_is_killed_with_its_children(tmp_path: Path) -> None:
    scratch = Scratch.make(tmp_path)
    started = time.monotonic()
    out = run(
        ["sh", "-c", "sleep 60 & echo $! > child.pid; wait"], scratch, environment(scratch, ""), timeout=1
    )
    assert out.returncode is None and "killed after the time limit" in str(out)
    assert time.monotonic() - started < 15
    child = int((scratch.work / "child.pid").read_text())

    def gone() -> bool:  # no such process, or a zombie nobody has reaped yet
        try:
            return Path(f"/proc/{child}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
        except FileNotFoundError:
            return True

    assert wait_for(gone, timeout=5)

"""Run an agent CLI headless and offline: a scratch home, a clean environment, a hard time limit.

Nothing of the developer's environment reaches the CLI but PATH and the locale: no API keys, no
proxies, no config folders. Every variable the CLI sees is chosen by the test. Outbound traffic that is
not for 127.0.0.1 goes to the proxy the test names (`via`): the proxy under test in explicit-proxy mode,
else a `Sink` that refuses it and notes where it was going.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

TIMEOUT = 120.0  # seconds for one CLI session; then its whole process group is killed
_INHERITED = ("PATH", "LANG", "LC_ALL", "LC_CTYPE")
# Claude Code's switches for headless runs (no update checks, no telemetry, no error reports); Codex
# is quietened in its config.toml (tests/agents/clis.py).
OFFLINE = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
}
_PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")


@dataclass(frozen=True)
class Scratch:
    """A throw-away home for one CLI session, with the folder it works in."""

    home: Path

    @property
    def work(self) -> Path:
        return self.home / "work"

    @classmethod
    def make(cls, root: Path) -> Scratch:
        scratch = cls(root / "home")
        scratch.work.mkdir(parents=True)
        return scratch


@dataclass(frozen=True)
class Outcome:
    argv: list[str]
    returncode: int | None  # None: killed at the time limit
    stdout: str
    stderr: str

    def __str__(self) -> str:
        status = "killed after the time limit" if self.returncode is None else f"exit {self.returncode}"
        return f"{self.argv[1:]}: {status}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr[-6000:]}"


def environment(scratch: Scratch, via: str, **variables: str) -> dict[str, str]:
    """The CLI's whole environment: its scratch home, proxy `via` for everything not on loopback, and
    `variables`."""
    env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
    env |= {
        "HOME": str(scratch.home),
        "XDG_CONFIG_HOME": str(scratch.home / ".config"),
        "XDG_CACHE_HOME": str(scratch.home / ".cache"),
        "XDG_DATA_HOME": str(scratch.home / ".local/share"),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        **OFFLINE,
    }
    for name in _PROXY_VARIABLES:
        env[name] = env[name.lower()] = via
    return env | variables


def run(argv: list[str], scratch: Scratch, env: dict[str, str], timeout: float = TIMEOUT) -> Outcome:
    """Run to the end or to the time limit, then kill whatever the CLI left running in its group."""
    proc = subprocess.Popen(
        argv,
        cwd=scratch.work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so the kill below reaches its children too
    )
    returncode: int | None
    try:
        out, err = proc.communicate(timeout=timeout)
        returncode = proc.returncode
    except subprocess.TimeoutExpired:
        returncode = None
        _kill_group(proc.pid)
        out, err = proc.communicate(timeout=10)
    _kill_group(proc.pid)
    return Outcome(argv, returncode, out, err)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)

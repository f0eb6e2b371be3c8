"""The processes under test: the fast upstream and the mitmdump variants, isolated like the test suite.

Every mitmdump gets the same flags (reverse mode, lazy connections, flow_detail=0, termlog at warn,
its own confdir) and a scrubbed environment; they differ only in the script they load.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.team import TeamServers
from bench.wire import OPENROUTER_CHAT, OPENROUTER_MODELS, PROXY_CHAT, PROXY_MODELS

ROOT = Path(__file__).resolve().parent.parent
# The proxy runs from a snapshot of these packages: edits to the working tree during a run would make
# mitmdump hot-reload the script (dropping in-flight streams) and mix code versions in one result.
SNAPSHOT = ("addons", "translators")
BIN = Path(sys.executable).parent
# Two OpenRouter keys, so a 429 on one is retried on the other (the failover row), and a Gemini key.
BENCH_KEYS = {
    "OPENROUTER_API_KEY_1": "sk-or-v1-bench-0000000000000001",
    "OPENROUTER_API_KEY_2": "sk-or-v1-bench-0000000000000002",
    "GEMINI_API_KEY": "AIzaBench-0000000000000000000000000000",
}
# The user's own settings must never leak into a benchmark proxy (same list as tests/harness.py).
_SCRUB = re.compile(
    r"^(OPENROUTER_|GEMINI_|LLM_|COMMAND_PREFIX|INTERACTIVE_MODE|REDACT_|PROXY_|APP_|HTTPS?_PROXY|ALL_PROXY|NO_PROXY)",
    re.I,
)
STREAM_ADDON = '''"""Plain mitmdump, but streaming: without this mitmdump buffers whole responses."""


def responseheaders(flow):
    flow.response.stream = True
'''
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Target:
    """Something the load client talks to: a port, the chat path there, and the process to watch."""

    name: str
    port: int
    chat_path: str
    models_path: str
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll the models endpoint until it answers 200 (for the proxy: after model discovery)."""
        url = f"http://127.0.0.1:{self.port}{self.models_path}"
        end = time.monotonic() + timeout
        last = ""
        while time.monotonic() < end:
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with _NO_PROXY.open(url, timeout=2) as resp:
                    if resp.status == 200 and b'"data"' in resp.read():
                        return
            except OSError as e:
                last = str(e)
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout:g} s ({last}):\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def problems(self) -> list[str]:
        """Warning/error lines the process printed (termlog runs at `warn`, so any line is news)."""
        if not self.log_path or not self.log_path.exists():
            return []
        return [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]

    def interrupt(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def stop(self) -> None:
        self.interrupt()
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Lab:
    """Starts and stops everything in one temp dir; use as a context manager."""

    def __init__(self, gap: float, events: int) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="llm-intercept-bench-"))
        self.gap = gap
        self.events = events
        self.env = {k: v for k, v in os.environ.items() if not _SCRUB.match(k)}
        self.env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.started: list[Target] = []
        self.code_digest = ""
        self.addon = Path()
        self.team: TeamServers | None = None  # set once proxy_team started: cleaned up at exit
        self.cleanup_problems: list[str] = []

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        for t in self.started:  # all at once: each mitmdump takes a moment to shut down
            t.interrupt()
        for t in reversed(self.started):
            t.stop()
        if self.team:  # after the proxies stopped: their last history batch lands before the drop
            self.cleanup_problems = self.team.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def snapshot(self, ref: str | None = None) -> tuple[Path, str]:
        """Copy the proxy's code into the temp dir (the working tree's, or the commit `ref`'s); returns
        the addon script and a digest of the copy. CalledProcessError when `ref` cannot be read."""
        dest = self.tmp / ("src" if ref is None else f"src-{ref}")
        digest = hashlib.sha256()
        if ref is None:
            for package in SNAPSHOT:
                shutil.copytree(ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dest.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", "--format=tar", ref, *SNAPSHOT],
                capture_output=True, check=True, timeout=60,
            )  # fmt: skip
            subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True, timeout=60)
        for path in sorted(dest.rglob("*.py")):
            digest.update(str(path.relative_to(dest)).encode() + b"\0" + path.read_bytes())
        return dest / "addons" / "llm_proxy.py", digest.hexdigest()

    def _spawn(self, target: Target, cmd: list[str], env: dict[str, str], cwd: Path) -> Target:
        target.log_path = self.tmp / f"{target.name}.log"
        with target.log_path.open("wb") as log:
            target.proc = subprocess.Popen(
                cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self.started.append(target)
        return target

    def upstream(self) -> Target:
        """The fast fake upstream, in its own process; its port comes back on stdout."""
        cmd = [sys.executable, "-m", "bench.upstream", "--gap", str(self.gap), "--events", str(self.events)]
        log_path = self.tmp / "upstream.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log
            )
        target = Target("upstream", 0, OPENROUTER_CHAT, OPENROUTER_MODELS, proc, log_path)
        self.started.append(target)
        assert proc.stdout
        line = proc.stdout.readline().decode()
        if not line.startswith("PORT "):
            raise RuntimeError(f"upstream did not start: {line!r}")
        target.port = int(line.split()[1])
        target.wait_ready()
        return target

    def _mitmdump(
        self,
        name: str,
        upstream: Target,
        scripts: list[Path],
        sets: dict[str, str],
        env: dict[str, str],
        api: tuple[str, str] | None = None,
    ) -> Target:
        """`api`: (chat path, models path) clients use; default: the upstream's, passed through."""
        port = free_port()
        confdir = self.tmp / f"conf-{name}"
        confdir.mkdir()
        cmd = [
            str(BIN / "mitmdump"),
            "--mode", f"reverse:http://127.0.0.1:{upstream.port}@{port}",
            "--listen-host", "127.0.0.1",
            "--set", "connection_strategy=lazy",
            "--set", "flow_detail=0",
            "--set", "termlog_verbosity=warn",
            "--set", f"confdir={confdir}",
        ]  # fmt: skip
        for script in scripts:
            cmd += ["-s", str(script)]
        for k, v in sets.items():
            cmd += ["--set", f"{k}={v}"]
        chat, models = api or (upstream.chat_path, upstream.models_path)
        return self._spawn(Target(name, port, chat, models), cmd, env, confdir)

    def plain(self, upstream: Target) -> Target:
        return self._mitmdump("plain", upstream, [], {}, self.env)

    def plain_streaming(self, upstream: Target) -> Target:
        script = self.tmp / "stream_all.py"
        script.write_text(STREAM_ADDON)
        target = self._mitmdump("plain_stream", upstream, [script], {}, self.env)
        target.notes.append("plain mitmdump + 1-line addon setting flow.response.stream = True")
        return target

    def proxy(
        self,
        upstream: Target,
        name: str = "proxy",
        team: TeamServers | None = None,
        addon: Path | None = None,
    ) -> Target:
        """The addon (code snapshot), both backends on the fast upstream, history on (in the temp dir);
        with `team`, its stores on Redis and PostgreSQL instead of the embedded defaults; with `addon`,
        that script instead of the working tree's snapshot."""
        if not self.code_digest:
            self.addon, self.code_digest = self.snapshot()
        settings = self.tmp / "llm-settings.yaml"
        settings.write_text("")
        env = dict(self.env)
        env.update(BENCH_KEYS)
        env["OPENROUTER_API_BASE_URL"] = f"http://127.0.0.1:{upstream.port}/api/v1"
        env["GEMINI_API_BASE_URL"] = f"http://127.0.0.1:{upstream.port}"
        env["LLM_HISTORY"] = str(self.history_path(name))
        env.update(team.env() if team else {})
        target = self._mitmdump(
            name,
            upstream,
            [addon or self.addon],
            {"llm_config": str(settings)},
            env,
            (PROXY_CHAT, PROXY_MODELS),
        )
        target.notes.append(
            f"code snapshot sha256 {self.code_digest}" if addon is None else f"code of {addon}"
        )
        return target

    def proxy_before(self, upstream: Target, ref: str) -> tuple[Target | None, str | None]:
        """The proxy as it was at commit `ref`, configured the same, or None and why it cannot run (a
        copy without git history, say)."""
        try:
            addon, _ = self.snapshot(ref)
        except (OSError, subprocess.SubprocessError) as e:
            return None, f"the code of {ref} is not available here ({type(e).__name__})"
        return self.proxy(upstream, "proxy_before", addon=addon), None

    def proxy_team(self, upstream: Target) -> tuple[Target | None, str | None]:
        """The proxy on the shared stores under a namespace of its own, or None and why it cannot run."""
        team = TeamServers()
        reason = team.unavailable()
        if reason:
            return None, reason
        self.team = team
        return self.proxy(upstream, "proxy_team", team), None

    @property
    def code_dir(self) -> Path:
        """Root of the code snapshot the proxies run (holds addons/ and translators/)."""
        return self.addon.parent.parent

    def history_path(self, name: str) -> Path:
        return self.tmp / f"history-{name}.sqlite3"

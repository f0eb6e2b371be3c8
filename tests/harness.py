"""Start a real mitmdump with the addon, on free loopback ports, isolated from the user's config."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
ADDON = ROOT / "addons" / "llm_proxy.py"
BIN = Path(sys.executable).parent
READY = re.compile(r"llm-intercept \S+ ready")
# Variables of ours a developer may have exported: never let them leak into a test proxy.
_SCRUB = re.compile(
    r"^(OPENROUTER_|GEMINI_|LLM_|COMMAND_PREFIX|INTERACTIVE_MODE|REDACT_|PROXY_|APP_|HTTPS?_PROXY|ALL_PROXY|NO_PROXY)",
    re.I,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Every proxy a test started, so the session can scan all they left behind for leaked keys.
STARTED: list[ProxyProcess] = []
SECRET_VARS = re.compile(r"^(OPENROUTER_API_KEY|GEMINI_API_KEY)(_\d+)?$|^PROXY_API_KEY$")


class ProxyProcess:
    def __init__(
        self,
        env: dict[str, str] | None = None,
        sets: dict[str, str] | None = None,
        reverse_target: str = "http://127.0.0.1:9",
        config_yaml: str = "",
        extra_args: list[str] | None = None,
        wait_ready: bool = True,
        web: bool = False,
        listen_host: str = "127.0.0.1",
        wrap: list[str] | None = None,
    ) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="llm-intercept-test-"))
        self.reverse_port = free_port()
        self.proxy_port = free_port()
        (self.tmp / "llm-settings.yaml").write_text(config_yaml)
        # Never the developer's own .env beside run_proxy.sh: a test proxy reads only what the test gives it.
        (self.tmp / "empty.env").write_text("")
        self.env = {k: v for k, v in os.environ.items() if not _SCRUB.match(k)}
        self.env["XDG_DATA_HOME"] = str(self.tmp / "data")  # history goes here, not into the user's home
        self.env.update(env or {})
        self.sets = {
            "llm_config": str(self.tmp / "llm-settings.yaml"),
            "llm_env_file": str(self.tmp / "empty.env"),
            **(sets or {}),
        }
        self.reverse_target = reverse_target
        self.extra_args = extra_args or []
        self.wait_ready = wait_ready
        self.web = web
        self.listen_host = listen_host
        self.wrap = wrap or []  # a command prefix, e.g. PrivateNet.wrap([]) to run inside a namespace
        self.web_port = free_port() if web else 0
        self.web_password = "web-test-password"
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.listen_host}:{self.reverse_port}/v1"

    @property
    def proxy_url(self) -> str:
        return f"http://{self.listen_host}:{self.proxy_port}"

    @property
    def ca_cert(self) -> Path:
        return self.tmp / "mitmproxy-ca-cert.pem"

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def command(self) -> list[str]:
        cmd = [
            *self.wrap,
            str(BIN / ("mitmweb" if self.web else "mitmdump")),
            "-s", str(ADDON),
            "--listen-host", self.listen_host,
            "--mode", f"reverse:{self.reverse_target}@{self.reverse_port}",
            "--mode", f"regular@{self.proxy_port}",
            "--set", f"confdir={self.tmp}",
            "--set", "connection_strategy=lazy",
        ]  # fmt: skip
        if self.web:
            cmd += [
                "--web-host",
                "127.0.0.1",
                "--web-port",
                str(self.web_port),
                "--set",
                "web_open_browser=false",
            ]
            cmd += ["--set", f"web_password={self.web_password}"]
        for k, v in self.sets.items():
            cmd += ["--set", f"{k}={v}"]
        return cmd + self.extra_args

    def secrets(self) -> list[str]:
        return [v for k, v in self.env.items() if SECRET_VARS.match(k) and len(v) >= 8]

    def start(self, timeout: float = 30.0) -> ProxyProcess:
        STARTED.append(self)
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.tmp,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        ready = threading.Event()
        threading.Thread(target=self._drain, args=(ready,), daemon=True).start()
        if self.wait_ready and (not ready.wait(timeout) or self.proc.poll() is not None):
            self.stop()
            raise RuntimeError(f"proxy did not become ready; output:\n{self.log}")
        return self

    def _drain(self, ready: threading.Event) -> None:
        assert self.proc and self.proc.stdout
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if READY.search(line):
                ready.set()
        ready.set()

    def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.proc
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> ProxyProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# Providers' public key prefixes: they appear in documentation, error messages and our own help text,
# so only what follows them is secret. Test keys must be high-entropy after the prefix, so that no 8
# characters of a key occur in ordinary text by chance (no runs like "aaaaaaaa" or "00000000").
PUBLIC_PREFIXES = ("sk-or-v1-", "AIza")
FRAGMENT = 8  # the shortest piece of a key that counts as a leak
_ESCAPE = re.compile(rb"\\u([0-9a-fA-F]{4})")


def _fragments(secret: str) -> list[bytes]:
    """Every FRAGMENT-character window of the secret part: any longer leaked piece contains one."""
    part = next((secret[len(p) :] for p in PUBLIC_PREFIXES if secret.startswith(p)), secret)
    return [part[i : i + FRAGMENT].encode() for i in range(len(part) - FRAGMENT + 1)]


def leaks(text: bytes, secrets: list[str]) -> list[str]:
    """Which secrets have any piece of >= FRAGMENT consecutive characters (at any offset) in `text`, as
    written or with JSON `\\uXXXX` escapes resolved (an escaped key is still a key)."""
    views = [text]
    if b"\\u" in text:
        views.append(_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)).encode("utf-8", "replace"), text))
    found = []
    for s in secrets:
        if any(f in v for f in _fragments(s) for v in views):
            found.append(f"{s[:4]}…")  # enough to tell which, never the key
    return found


def response_leaks(resp: httpx.Response, secrets: list[str]) -> list[str]:
    """`leaks` over everything a client received: status line, headers and body."""
    head = "\n".join(f"{k}: {v}" for k, v in resp.headers.multi_items())
    return leaks(f"{resp.status_code} {resp.reason_phrase}\n{head}\n".encode() + resp.content, secrets)


def scan_leftovers(p: ProxyProcess) -> dict[str, list[str]]:
    """Log output (and flow dumps), and every file a proxy left in its folder (history DB with its
    -wal/-shm, state files, saved flows): where is which key."""
    secrets = p.secrets()
    hits: dict[str, list[str]] = {}
    if found := leaks(p.log.encode(), secrets):
        hits["log"] = found
    for path in p.tmp.rglob("*"):
        if path.is_file() and (found := leaks(path.read_bytes(), secrets)):
            hits[str(path.relative_to(p.tmp))] = found
    return hits


def mitmproxy_major() -> int:
    from mitmproxy.version import VERSION

    return int(VERSION.split(".")[0])


def web_ui(p: ProxyProcess, password: str | None = None) -> httpx.Client:
    """A client of mitmweb's API, logged in with `password` (default: the proxy's; "" = not logged in)."""
    password = p.web_password if password is None else password
    # Tornado's XSRF check only compares cookie and header, so a client that is not a browser picks the
    # token itself (cookie `_xsrf` up to mitmproxy 12.2.2, `_mitmproxy_xsrf` since 12.2.3).
    xsrf = "0123456789abcdef0123456789abcdef"
    headers = {"X-XSRFToken": xsrf} | ({"authorization": f"Bearer {password}"} if password else {})
    return httpx.Client(
        base_url=f"http://127.0.0.1:{p.web_port}",
        headers=headers,
        cookies={"_xsrf": xsrf, "_mitmproxy_xsrf": xsrf},
        trust_env=False,
        timeout=30,
    )


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())

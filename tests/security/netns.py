"""A private network namespace with a non-loopback address, for attacks that need one.

Tests that prove what happens when the proxy listens beyond loopback must never send traffic to a real
network. `PrivateNet` makes a named namespace of its own (root only, as in CI), gives its loopback device
an extra address from 10.254.0.0/16 that exists nowhere else, and runs commands inside it with
`ip netns exec`: the proxy, fake upstreams and attacking clients all live there, and nothing leaves.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest


def available() -> str | None:
    """Why namespaces cannot be used here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root to create a network namespace"
    if shutil.which("ip") is None:
        return "needs iproute2's `ip`"
    return None


class PrivateNet:
    def __init__(self, name: str, address: str) -> None:
        self.name = name
        self.address = address  # non-loopback, reachable only inside the namespace

    def wrap(self, cmd: Sequence[str]) -> list[str]:
        """`cmd` run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *cmd]

    def run(self, cmd: Sequence[str], timeout: float = 60, **kw: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.wrap(cmd), capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]

    def python(self, code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a Python snippet (with this interpreter and its packages) inside the namespace."""
        return self.run([sys.executable, "-c", code], timeout=timeout)


_counter = 0


@contextmanager
def private_net() -> Iterator[PrivateNet]:
    """A fresh namespace, removed afterwards. Skips (with the reason) where namespaces are unavailable."""
    global _counter
    why = available()
    if why:
        pytest.skip(why)
    _counter += 1
    name = f"llmtest-{os.getpid()}-{_counter}"
    address = f"10.254.{os.getpid() % 250}.{_counter % 250 + 1}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        subprocess.run(
            ["ip", "netns", "exec", name, "ip", "addr", "add", f"{address}/32", "dev", "lo"], check=True
        )
        yield PrivateNet(name, address)
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)

"""A mitmproxy script loaded after the llm-intercept addon into the agent tests' proxy (`-s`).

Every connection the proxy would open beyond loopback (a request it let through, a TLS tunnel to a host
it does not intercept) is refused before it is opened. mitmproxy logs each as `server connection to
HOST:PORT killed before connect: <GUARD_MARK>`, so the tests can both keep everything on 127.0.0.1 and
name what the proxy would have reached.
"""

from __future__ import annotations

import ipaddress

from mitmproxy.proxy.server_hooks import ServerConnectionHookData

GUARD_MARK = "agent-guard: nothing leaves 127.0.0.1 in the agent tests"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_connect(data: ServerConnectionHookData) -> None:
    server = data.server
    if server.address is not None and server.error is None and not _loopback(server.address[0]):
        server.error = GUARD_MARK

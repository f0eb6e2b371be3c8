"""Where the proxy may connect for its clients: not this machine's loopback services (mitmweb, databases,
the relay), not link-local addresses (cloud metadata), not the web UI's port on any host."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from addons.netaddr import local_name
from addons.security.refusal import Refusal

_ZERO_NET = ipaddress.ip_network("0.0.0.0/8")


def forbidden_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_link_local or ip.is_unspecified or (ip.version == 4 and ip in _ZERO_NET)


def destination_refusal(host: str, port: int, web_port: int | None) -> Refusal | None:
    """The refusal for a destination given as a name or literal, before any lookup."""
    if web_port and port == web_port:
        return _unreachable(f"port {port} (mitmweb's UI)")
    if local_name(host):
        return _unreachable(host)
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return _unreachable(host) if forbidden_ip(ip) else None


async def resolved_refusal(host: str, port: int) -> tuple[Refusal | None, str | None]:
    """Resolves a name: a refusal when any of its addresses is forbidden (a name pointed at 127.0.0.1), else
    the address to connect to, so that a second lookup cannot answer differently (DNS rebinding).
    (None, None) when the name does not resolve: the connection then fails by itself."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return None, None  # a literal: destination_refusal decided
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None, None
    ips = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not ips:
        return None, None
    if any(forbidden_ip(ip) for ip in ips):
        return _unreachable(f"{host} (resolves to a loopback or link-local address)"), None
    # IPv4 first: a pinned address has no fallback, and broken IPv6 routes are the commoner failure.
    return None, str(min(ips, key=lambda ip: ip.version))


def _unreachable(what: str) -> Refusal:
    return Refusal(
        403,
        f"This proxy does not connect to {what}: loopback, link-local and unspecified addresses, localhost "
        "names and the web UI's port are not reachable through it.",
        "destination_not_allowed",
    )

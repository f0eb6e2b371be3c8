"""Which hosts are this machine's own: one answer for listen addresses, destinations and base URLs."""

from __future__ import annotations

import ipaddress


def local_name(host: str) -> bool:
    """`localhost` and any `*.localhost` name (RFC 6761: always this machine)."""
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost")


def is_loopback(host: str) -> bool:
    """A listen or destination host on this machine's loopback ('' means every interface: not loopback)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return local_name(host)

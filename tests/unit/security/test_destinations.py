"""Where the proxy may connect (addons/security/destinations.py)."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from addons.security.destinations import destination_refusal, forbidden_ip, resolved_refusal


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "0.0.0.0", "::", "0.1.2.3", "169.254.169.254", "fe80::1",
     "::ffff:127.0.0.1", "localhost", "LOCALHOST.", "api.localhost"],
)  # fmt: skip
def test_local_destinations_are_refused(host: str) -> None:
    refusal = destination_refusal(host, 80, None)
    assert refusal is not None and refusal.status == 403 and refusal.code == "destination_not_allowed"


@pytest.mark.parametrize("host", ["10.254.1.2", "192.168.1.1", "93.184.216.34", "example.com", "2001:db8::1"])
def test_other_destinations_pass_the_literal_check(host: str) -> None:
    assert destination_refusal(host, 443, 8081) is None


def test_the_web_ui_port_is_refused_on_any_host() -> None:
    assert destination_refusal("10.254.1.2", 8081, 8081) is not None
    assert destination_refusal("10.254.1.2", 8081, None) is None


def test_names_that_resolve_to_loopback_are_refused_and_others_pinned() -> None:
    refusal, pinned = asyncio.run(resolved_refusal("localhost", 80))
    assert refusal is not None and pinned is None and "resolves to" in refusal.message
    assert asyncio.run(resolved_refusal("10.254.1.2", 80)) == (None, None)  # literals: decided earlier
    assert asyncio.run(resolved_refusal("no-such-name.invalid", 80)) == (None, None)


def test_forbidden_ip_sees_through_ipv4_mapped_addresses() -> None:
    assert forbidden_ip(ipaddress.ip_address("::ffff:169.254.1.1"))
    assert not forbidden_ip(ipaddress.ip_address("::ffff:10.0.0.1"))

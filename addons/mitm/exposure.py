"""Which addresses may listen: nothing beyond loopback without an access token, and which hosts are
TLS-intercepted in proxy modes."""

from __future__ import annotations

import re
from collections.abc import Sequence

from mitmproxy import ctx
from mitmproxy.proxy.mode_specs import ProxyMode, ReverseMode

from addons.netaddr import is_loopback
from addons.settings import Settings

EXPOSED = (
    "llm-intercept: refusing to listen on %s without an access token: anyone who can reach it could spend "
    "your API keys. Set PROXY_API_KEY (clients send it as a Bearer token), bind 127.0.0.1 "
    "(--listen-host 127.0.0.1; mitmweb: --web-host 127.0.0.1), or set allow_remote_without_token=true."
)


def exposed_without_token(settings: Settings, hosts: Sequence[str]) -> list[str]:
    """The listening addresses beyond loopback that nothing guards ("" = every interface, shown as *)."""
    if settings.proxy_api_key or settings.allow_remote_without_token:
        return []
    return list(dict.fromkeys(h or "*" for h in hosts if not is_loopback(h)))


def web_hosts() -> list[str]:
    """mitmweb's UI address: the option exists only under mitmweb."""
    return [ctx.options.web_host] if "web_host" in ctx.options else []


def intercept_only_patterns(modes: Sequence[str], hosts: Sequence[str]) -> list[str]:
    """allow_hosts for proxy modes: the OpenAI hosts plus every reverse target (none if reverse only)."""
    parsed = [ProxyMode.parse(m) for m in modes]
    if all(isinstance(m, ReverseMode) for m in parsed):
        return []
    patterns = [rf"^{re.escape(h)}(:\d+)?$" for h in hosts]
    patterns += [rf"^{re.escape(m.address[0])}:{m.address[1]}$" for m in parsed if isinstance(m, ReverseMode)]
    return list(dict.fromkeys(patterns))

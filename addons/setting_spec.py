"""What a setting is: one declaration (name, option, env, help, type, default) and the validated value
types declarations use. A leaf of its own so that settings.py and the backends' declarations
(addons/backends/specs.py), which settings.py reads, can both use it without importing each other."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator

from addons.netaddr import is_loopback


@dataclass(frozen=True, slots=True)
class SettingSpec:
    name: str  # attribute of Settings and key in mitm_config.yaml
    env: str  # environment variable
    help: str
    type: Any  # what pydantic validates the value with: bounds and checks ride along in Annotated
    default: Any
    option: str = ""  # mitmproxy option name (--set NAME=...); empty: the same as `name`

    def __post_init__(self) -> None:
        if not self.option:
            object.__setattr__(self, "option", self.name)


def _url(v: str) -> str:
    if not re.match(r"^https?://[^\s/]+", v):
        raise ValueError(f"must be an http(s) URL, got {v!r}")
    return v.rstrip("/")


def _keys_travel_encrypted(v: str) -> str:
    # Keys go in this URL's requests: plain http only where nothing can listen in (tests, local relays).
    url = urlsplit(v)
    if url.scheme == "http" and not is_loopback(url.hostname or ""):
        raise ValueError("must use https:// (API keys are sent there); http:// is for loopback only")
    return v


def _no_whitespace(v: str) -> str:
    if any(c.isspace() for c in v):
        raise ValueError("must not contain whitespace")
    return v


def _host_list(v: Any) -> Any:
    if isinstance(v, str):
        v = [h for h in re.split(r"[,\s]+", v) if h]
    return tuple(h.lower() for h in v)


Url = Annotated[str, AfterValidator(_url)]
# A provider's base URL: every key of that provider is sent there.
KeyUrl = Annotated[str, AfterValidator(_url), AfterValidator(_keys_travel_encrypted)]
NoWhitespace = AfterValidator(_no_whitespace)
# Comma- or space-separated in options and env, a list in YAML; compared lower-case.
Hosts = Annotated[tuple[str, ...], BeforeValidator(_host_list)]

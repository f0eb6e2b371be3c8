"""Ids the proxy makes up: responses, output items, and input items that came without one."""

from __future__ import annotations

import secrets
from collections.abc import Callable

# prefix -> id; tests pass a counter so rendered events are reproducible.
IdFactory = Callable[[str], str]


def random_id(prefix: str) -> str:
    return prefix + secrets.token_hex(16)

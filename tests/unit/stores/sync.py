"""Tests of pure logic over async stores read best as plain calls."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any


class Sync:
    """The wrapped object, with each coroutine method run to completion on a fresh event loop."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.target, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        return lambda *a, **kw: asyncio.run(attr(*a, **kw))

"""Pipeline tests run the real pipeline, backends and translators in-process against `MockUpstream`:
no mitmdump, no sockets, milliseconds per case."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from addons import app
from addons.frontends.base import Reply
from addons.pipeline import dispatch
from addons.pipeline.core import Core
from addons.settings import load_settings
from tests.unit.pipeline.mock_upstream import Handler, MockUpstream

OR_KEYS = ("sk-or-v1-inproc-7Qx2Lm9Wc4Rt8Yb1Nz6Kd3Hf", "sk-or-v1-inproc-2Bv5Tg8Jn1Mq4Xw7Ps0Lc9Ry")
GEMINI_KEYS = ("AIzaInproc-3Hd8Kq1Zx6Vb9Nm2Lw5Rt7Yc0", "AIzaInproc-8Fj2Pm5Qs1Wd4Gk7Xn0Bv3Ht9")
OR_MODELS = ["openai/gpt-4o-mini", "anthropic/claude-3.5-sonnet"]
GEMINI_MODELS = ["gemini-2.5-flash", "gemini-2.5-pro"]


def build_core(
    handler: Handler, env: dict[str, str] | None = None, yaml: dict[str, Any] | None = None
) -> Core:
    base_env = {
        "OPENROUTER_API_KEY_1": OR_KEYS[0],
        "OPENROUTER_API_KEY_2": OR_KEYS[1],
        "GEMINI_API_KEY_1": GEMINI_KEYS[0],
        "GEMINI_API_KEY_2": GEMINI_KEYS[1],
        "LLM_HISTORY": "off",
    }
    settings = load_settings({}, {**base_env, **(env or {})}, yaml or {})
    core = app.build(settings, upstream=MockUpstream(handler))
    core.catalog.set_models("openrouter", OR_MODELS)
    core.catalog.set_models("gemini", GEMINI_MODELS)
    core.catalog.mark_ready()
    return core


_LOOP = asyncio.new_event_loop()


def run[T](coro: Coroutine[Any, Any, T]) -> T:
    """One event loop for every step of a test, as in the proxy: a stream opened while a call is handled
    is read when the reply is drained (asyncio.run would close its generators in between)."""
    return _LOOP.run_until_complete(coro)


def call(core: Core, body: dict[str, Any], headers: dict[str, str] | None = None) -> Reply:
    async def go() -> Reply:
        reply = await dispatch.handle(
            core, "POST", "/v1/chat/completions", headers or {}, json.dumps(body).encode()
        )
        assert reply is not None
        return reply

    return run(go())


def drain(reply: Reply) -> bytes:
    """The whole body of a reply, streamed or not."""
    if reply.stream is None:
        return reply.body

    async def go() -> bytes:
        assert reply.stream is not None
        return b"".join([c async for c in reply.stream])

    return run(go())


MakeCore = Callable[..., tuple[Core, MockUpstream]]


@pytest.fixture
def make_core() -> MakeCore:
    def make(handler: Handler, **kw: Any) -> tuple[Core, MockUpstream]:
        core = build_core(handler, **kw)
        assert isinstance(core.upstream, MockUpstream)
        return core, core.upstream

    return make

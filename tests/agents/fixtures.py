"""Fixtures of the agent CLI tests (tests/e2e/test_claude_code.py, test_codex.py), which import them:
the fake Gemini (test_gemini_path's), the proxy for agents, the sink for stray traffic, a scratch home,
and the CLIs' own providers scripted (`scripted`) to prove the plumbing without the proxy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agents import proxy
from tests.agents.run import Scratch
from tests.agents.scripted import ScriptedAgentServer
from tests.agents.sink import Sink
from tests.e2e.test_gemini_path import gemini
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.harness import ProxyProcess

__all__ = ["agent_proxy", "gemini", "scratch", "scripted", "sink"]


@pytest.fixture(scope="module")
def agent_proxy(gemini: FakeGemini, openrouter: FakeOpenRouter) -> Iterator[ProxyProcess]:
    with proxy.configure(gemini, openrouter) as p:
        yield p


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink() as s:
        yield s


@pytest.fixture
def scripted() -> Iterator[ScriptedAgentServer]:
    with ScriptedAgentServer() as server:
        yield server  # type: ignore[misc]  # FakeServer.__enter__ is typed as the base class


@pytest.fixture
def scratch(tmp_path: Path) -> Scratch:
    return Scratch.make(tmp_path)

"""Shared fixtures: fake upstreams and one real mitmdump per test session."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests import harness
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.harness import ProxyProcess

# High-entropy after the public prefix: the leak scan (tests/harness.py) reports any 8 characters of a
# key found anywhere, so test keys must share no 8-character run with ordinary text.
OPENROUTER_KEYS = (
    "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",
    "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",
)


@pytest.fixture(scope="session")
def openrouter() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter(OPENROUTER_KEYS) as fake:
        yield fake


@pytest.fixture(scope="session")
def passthrough_target() -> Iterator[FakeOpenRouter]:
    """A plain upstream behind reverse mode, to prove non-LLM requests pass through untouched."""
    with FakeOpenRouter(()) as fake:
        yield fake


@pytest.fixture(scope="session")
def proxy(openrouter: FakeOpenRouter, passthrough_target: FakeOpenRouter) -> Iterator[ProxyProcess]:
    env = {
        "OPENROUTER_API_KEY_1": OPENROUTER_KEYS[0],
        "OPENROUTER_API_KEY_2": OPENROUTER_KEYS[1],
        "OPENROUTER_API_BASE_URL": openrouter.base_url,
        "APP_SITE_URL": "https://example.test/app",
        "APP_X_TITLE": "intercept-tests",
        "PROXY_TIMEOUT": "3",
        "LLM_REVERSE_PASSTHROUGH": "true",  # test_other_paths_pass_through_untouched relies on it
    }
    with ProxyProcess(env=env, reverse_target=f"http://127.0.0.1:{passthrough_target.port}") as p:
        yield p


@pytest.fixture(scope="module")
def web(openrouter: FakeOpenRouter) -> Iterator[ProxyProcess]:
    """A proxy under mitmweb (its UI logged in with the harness's password), per module."""
    env = {
        "OPENROUTER_API_KEY_1": OPENROUTER_KEYS[0],
        "OPENROUTER_API_KEY_2": OPENROUTER_KEYS[1],
        "OPENROUTER_API_BASE_URL": openrouter.base_url,
    }
    with ProxyProcess(env=env, web=True) as p:
        yield p


@pytest.fixture(scope="session", autouse=True)
def _no_key_left_behind() -> Iterator[None]:
    """After the whole run: no configured key in any proxy's log, history, state file or saved flows."""
    yield
    report = {
        f"proxy {i}": hits for i, p in enumerate(harness.STARTED) if (hits := harness.scan_leftovers(p))
    }
    assert not report, f"API keys leaked: {report}"


@pytest.fixture(autouse=True)
def _fresh_fakes(request: pytest.FixtureRequest) -> None:
    for name in ("openrouter", "passthrough_target", "gemini"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()


@pytest.fixture
def client(proxy: ProxyProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=proxy.base_url, api_key="client-side-key", max_retries=0, timeout=20) as c:
        yield c


@pytest.fixture
def aclient(proxy: ProxyProcess) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.base_url, api_key="client-side-key", max_retries=0, timeout=20)


@pytest.fixture
def http(proxy: ProxyProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{proxy.reverse_port}", timeout=20, trust_env=False) as c:
        yield c


@pytest.fixture
def explicit_http(proxy: ProxyProcess) -> Iterator[httpx.Client]:
    """A client that reaches https://api.openai.com through the proxy, trusting mitmproxy's CA."""
    ctx = ssl.create_default_context(cafile=proxy.ca_cert)
    with httpx.Client(proxy=proxy.proxy_url, verify=ctx, timeout=20, trust_env=False) as c:
        yield c

"""The addon's hooks on mitmproxy's own test flows (mitmproxy.test.taddons / tflow): no process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import taddons, tflow

from addons.llm_proxy import LLMProxy
from addons.mitm import flowview
from tests.fakes.fake_openrouter import completion
from tests.unit.pipeline.conftest import OR_KEYS, OR_MODELS
from tests.unit.pipeline.mock_upstream import MockUpstream, json_answer

MODEL = OR_MODELS[0]


@pytest.fixture
def proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LLMProxy, MockUpstream]]:
    for name in ("OPENROUTER_API_KEY", "GEMINI_API_KEY", "PROXY_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    # Start-up settings come from the environment (the options' files can only be given at start-up).
    monkeypatch.chdir(tmp_path)
    env = {"OPENROUTER_API_KEY_1": OR_KEYS[0], "LLM_HISTORY": "off", "LLM_MAX_REQUEST_BYTES": "2048"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    addon = LLMProxy()
    with taddons.context() as tctx:
        tctx.options.update(listen_host="127.0.0.1")
        tctx.master.addons.add(addon)
        tctx.configure(addon)  # start-up: what mitmdump does once every option is set
        assert addon.core is not None
        upstream = MockUpstream(lambda c: json_answer(200, completion("ok", MODEL)))
        addon.core.upstream = upstream
        addon.core.catalog.set_models("openrouter", OR_MODELS)
        addon.core.catalog.mark_ready()
        yield addon, upstream


def reverse_flow(body: bytes, headers: dict[str, str] | None = None) -> tflow.HTTPFlow:
    f = tflow.tflow()
    f.client_conn.proxy_mode = ProxyMode.parse("reverse:http://127.0.0.1:9")
    f.request.method, f.request.path = "POST", "/v1/chat/completions"
    f.request.content = body
    for k, v in {"host": "127.0.0.1:8080", "content-type": "application/json", **(headers or {})}.items():
        f.request.headers[k] = v
    return f


def test_requestheaders_refuses_an_oversized_content_length(
    proxy: tuple[LLMProxy, MockUpstream],
) -> None:
    addon, upstream = proxy
    f = reverse_flow(b"{}")
    f.request.headers["content-length"] = "5000"
    asyncio.run(addon.requestheaders(f))
    assert f.response is not None and f.response.status_code == 413, f.response.content
    assert "at most" in json.loads(f.response.content or b"")["error"]["message"]
    assert upstream.calls == []


def test_request_gets_a_synthetic_response_with_comment_metadata_and_masking(
    proxy: tuple[LLMProxy, MockUpstream],
) -> None:
    addon, upstream = proxy
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}).encode()
    f = reverse_flow(body, {"authorization": "Bearer client-own-secret-token-1234"})
    asyncio.run(addon.requestheaders(f))
    assert f.response is None
    asyncio.run(addon.request(f))
    assert f.response is not None and f.response.status_code == 200
    assert json.loads(f.response.content or b"")["choices"][0]["message"]["content"] == "ok"
    assert len(upstream.calls) == 1
    # The flow shows the request that really left, its key masked; the record is its comment/metadata.
    assert f.request.headers["authorization"] == flowview.MASK
    assert OR_KEYS[0] not in f.request.url and OR_KEYS[0].encode() not in bytes(f.request.raw_content or b"")
    assert f.metadata["llm"]["backend"] == "openrouter" and MODEL in f.comment
    assert f.metadata["llm_client_request"]
    assert f.marked


@pytest.mark.parametrize("hook", ["requestheaders", "request"])
def test_a_bug_in_a_deciding_hook_refuses_the_request(
    proxy: tuple[LLMProxy, MockUpstream], monkeypatch: pytest.MonkeyPatch, hook: str
) -> None:
    """mitmproxy forwards a flow untouched when a hook raises: the addon answers 500 instead."""
    addon, upstream = proxy

    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    # requestheaders decides through the edge; request through the pipeline's dispatch.
    if hook == "requestheaders":
        monkeypatch.setattr(addon.edge, "screen", broken)
    else:
        monkeypatch.setattr("addons.pipeline.dispatch.handle", broken)
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}).encode()
    f = reverse_flow(body)
    asyncio.run(getattr(addon, hook)(f))
    assert f.response is not None and f.response.status_code == 500
    assert json.loads(f.response.content or b"")["error"]["code"] == "proxy_error"
    assert upstream.calls == []

"""tests/fakes/fake_gemini.py over loopback, driven with the translators' requests and answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fakes.fake_gemini import (
    FakeGemini,
    GeminiRejection,
    Reply,
    dropped,
    rate_limited,
    raw_stream,
    server_error,
    validate_request,
)
from tests.unit.translators.gemini.support import MODEL, cand, run_stream
from translators.gemini import (
    from_gemini_response,
    gemini_error_to_openai,
    gemini_path,
    parse_model_page,
    retry_info,
    to_gemini_request,
)

KEY = "AIzaFakeKeyForTheUnitTests0000000000000"


@pytest.fixture(scope="module")
def fake() -> Any:
    with FakeGemini(keys=(KEY,), chunks=4) as server:
        yield server


@pytest.fixture
def gem(fake: FakeGemini) -> Any:
    fake.reset()
    with httpx.Client(
        base_url=fake.base_url, headers={"x-goog-api-key": KEY}, timeout=10, trust_env=False
    ) as c:
        yield c


def test_fake_lists_models_in_pages(fake: FakeGemini, gem: httpx.Client) -> None:
    ids: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"pageSize": 2, **({"pageToken": token} if token else {})}
        ids_page, token = parse_model_page(gem.get("/v1beta/models", params=params).json())
        ids += ids_page
        pages += 1
        if token is None:
            break
    assert pages == 4
    assert ids == [
        "gemini-2.5-flash",
        "gemini-2.5-pro",
        "gemini-2.5-flash-lite",
        "gemini-2.0-flash",
        "gemini-3-pro-preview",
    ]
    assert gem.get("/v1beta/models", params={"pageToken": "bogus!"}).status_code == 400


def test_fake_rejects_bad_keys_like_google(gem: httpx.Client) -> None:
    r = gem.post(gemini_path(MODEL, False), json={}, headers={"x-goog-api-key": "wrong"})
    status, err, _ = gemini_error_to_openai(r.status_code, r.content)
    assert (r.status_code, status, err["error"]["code"]) == (400, 400, "API_KEY_INVALID")


def test_fake_echo_non_stream_and_stream(fake: FakeGemini, gem: httpx.Client) -> None:
    body = to_gemini_request({"messages": [{"role": "user", "content": "hello there"}]}, model=MODEL)
    r = gem.post(gemini_path(MODEL, False), json=body)
    assert (
        from_gemini_response(r.json(), model=MODEL)["choices"][0]["message"]["content"] == "echo: hello there"
    )

    raw = b""
    with gem.stream("POST", gemini_path(MODEL, True), json=body) as resp:
        assert resp.headers["transfer-encoding"] == "chunked" and "content-length" not in resp.headers
        assert resp.headers["content-type"] == "text/event-stream"
        pieces = list(resp.iter_raw())
        raw = b"".join(pieces)
    assert raw.count(b"\r\n\r\n") == 4 and b"[DONE]" not in raw
    out = run_stream(raw)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in out[:-2]) == "echo: hello there"
    assert out[-2]["usage"]["completion_tokens"] == 3
    rec = fake.last_generate()
    assert rec.headers["x-goog-api-key"] == KEY and rec.json() == body and rec.path.endswith("?alt=sse")


def test_fake_scripts_faults_per_key_and_in_order(fake: FakeGemini, gem: httpx.Client) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
    fake.enqueue(rate_limited("12.5s"), key="someone-else")
    fake.enqueue(server_error(503), rate_limited("7.25s", per_day=True))
    first = gem.post(gemini_path(MODEL, False), json=body)
    second = gem.post(gemini_path(MODEL, False), json=body)
    third = gem.post(gemini_path(MODEL, False), json=body)
    assert [first.status_code, second.status_code, third.status_code] == [503, 429, 200]
    assert retry_info(second.content) == (7.25, True)
    assert fake.pending() == 1  # the other key's script is still waiting
    assert fake.keys_used() == [KEY, KEY, KEY]


def test_fake_refuses_what_google_refuses(gem: httpx.Client) -> None:
    bad = {
        "contents": [{"role": "user", "parts": [{"text": "x"}]}],
        "tools": [
            {
                "functionDeclarations": [
                    {"name": "f", "parameters": {"type": "object", "additionalProperties": False}}
                ]
            }
        ],
    }
    r = gem.post(gemini_path(MODEL, False), json=bad)
    assert r.status_code == 400 and "additionalProperties" in r.json()["error"]["message"]
    with pytest.raises(GeminiRejection):
        validate_request({"contents": [{"role": "user", "parts": [{"text": ""}]}]})
    r = gem.post(gemini_path("gemini-nope", False), json=bad)
    assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"


def test_fake_tool_calls_and_thought_signature_check(fake: FakeGemini, gem: httpx.Client) -> None:
    model = "gemini-3-pro-preview"
    messages: list[dict[str, Any]] = [{"role": "user", "content": "weather?"}]
    fake.enqueue(Reply(tool_calls=[("get_weather", {"city": "Paris"}), ("get_time", {})]))
    raw = b""
    with gem.stream(
        "POST", gemini_path(model, True), json=to_gemini_request({"messages": messages}, model=model)
    ) as r:
        raw = b"".join(r.iter_raw())
    out = run_stream(raw)
    calls = [tc for c in out[:-2] for tc in c["choices"][0]["delta"].get("tool_calls") or []]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert out[-3]["choices"][0]["finish_reason"] == "tool_calls"
    for c in calls:
        c.pop("index")
    messages += [
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": '{"temp": 20}'},
        {"role": "tool", "tool_call_id": calls[1]["id"], "content": "noon"},
    ]
    r = gem.post(gemini_path(model, False), json=to_gemini_request({"messages": messages}, model=model))
    assert r.status_code == 200, r.text
    answer = from_gemini_response(r.json(), model=model)["choices"][0]["message"]["content"]
    assert answer == 'echo: get_weather -> {"temp": 20} get_time -> {"content": "noon"}'
    assert [(c.function, c.ok) for c in fake.signature_checks] == [("get_weather", True)]

    # A client that lost the signature gets Gemini 3's 400, and the check records it.
    messages[1]["tool_calls"] = [{**calls[0], "id": "call_lost"}, calls[1]]
    messages[2]["tool_call_id"] = "call_lost"
    sent = to_gemini_request({"messages": messages}, model="gemini-2.5-flash")  # no placeholder on 2.5
    r = gem.post(gemini_path(model, False), json=sent)
    assert r.status_code == 400 and "thought_signature" in r.json()["error"]["message"]
    assert fake.signature_checks[-1].received is None and not fake.signature_checks[-1].ok


def test_fake_mid_stream_error_drop_and_raw_events(fake: FakeGemini, gem: httpx.Client) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "one two three four"}]}]}
    fake.enqueue(Reply(error_after=2), Reply(drop_after=1))
    with gem.stream("POST", gemini_path(MODEL, True), json=body) as r:
        out = run_stream(b"".join(r.iter_raw()))
    assert out[-1]["error"]["code"] == "UNAVAILABLE" and len(out) == 3
    with (
        pytest.raises(httpx.RemoteProtocolError),
        gem.stream("POST", gemini_path(MODEL, True), json=body) as r,
    ):
        b"".join(r.iter_raw())
    fake.enqueue(raw_stream([{"candidates": [cand([{"text": "raw"}], "STOP")]}]))
    with gem.stream("POST", gemini_path(MODEL, True), json=body) as r:
        out = run_stream(b"".join(r.iter_raw()))
    assert out[0]["choices"][0]["delta"]["content"] == "raw"


def test_fake_slow_headers_dropped_connections_thoughts_and_blocks(
    fake: FakeGemini, gem: httpx.Client
) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
    fake.enqueue(Reply(header_delay=0.5))
    with pytest.raises(httpx.ReadTimeout):
        gem.post(gemini_path(MODEL, False), json=body, timeout=httpx.Timeout(5, read=0.1))
    fake.enqueue(dropped())
    with pytest.raises(httpx.RemoteProtocolError):
        gem.post(gemini_path(MODEL, False), json=body)
    fake.enqueue(Reply(text="fine", thoughts="pondering deeply"), Reply(block_reason="SAFETY"))
    thought = from_gemini_response(gem.post(gemini_path(MODEL, False), json=body).json(), model=MODEL)
    assert thought["choices"][0]["message"]["reasoning_content"] == "pondering deeply"
    assert thought["usage"]["completion_tokens_details"]["reasoning_tokens"] == 2
    blocked = from_gemini_response(gem.post(gemini_path(MODEL, False), json=body).json(), model=MODEL)
    assert blocked["choices"][0]["finish_reason"] == "content_filter"
    fake.enqueue_models(server_error(500))
    assert gem.get("/v1beta/models").status_code == 500
    assert gem.get("/v1beta/models").status_code == 200

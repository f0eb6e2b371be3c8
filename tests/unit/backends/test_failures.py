"""How provider failures steer the next attempt, and how flows describe themselves."""

from __future__ import annotations

import email.utils
import json
import time

import httpx
import pytest

from addons.backends.errors import classify_status, normalise_error, retry_after_seconds
from addons.backends.gemini import GeminiBackend
from addons.backends.openrouter import OpenRouterBackend
from addons.mitm import flowview
from addons.records import AttemptRecord, CallRecord, Usage
from addons.security.redaction import Redactor

GEMINI_429 = {
    "error": {
        "code": 429,
        "status": "RESOURCE_EXHAUSTED",
        "message": "Quota exceeded",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "45.83s"}],
    }
}


def test_retry_after_forms() -> None:
    assert retry_after_seconds(httpx.Headers({"retry-after": "12"})) == 12
    assert retry_after_seconds(httpx.Headers({"retry-after-ms": "1500"})) == 1.5
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (retry_after_seconds(httpx.Headers({"retry-after": later})) or 0) <= 31
    assert retry_after_seconds(httpx.Headers({"retry-after": "soon"})) is None
    assert retry_after_seconds(httpx.Headers()) is None


CASES = [(429, True, True), (500, True, False), (503, True, False), (408, True, False)]
CASES += [(400, False, False), (401, False, False), (404, False, False)]


@pytest.mark.parametrize(("status", "retry", "rest"), CASES)
def test_classify(status: int, retry: bool, rest: bool) -> None:
    f = classify_status(status, httpx.Headers())
    assert (f.retry, f.rest) == (retry, rest)


def test_gemini_failures() -> None:
    g = GeminiBackend("http://x")
    f = g.failure(429, httpx.Headers(), json.dumps(GEMINI_429).encode())
    assert f.rest and f.cooldown == pytest.approx(45.83)
    per_day = dict(GEMINI_429)
    per_day["error"] = {**GEMINI_429["error"], "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
         "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}  # fmt: skip
    f = g.failure(429, httpx.Headers(), json.dumps(per_day).encode())
    assert f.rest and f.cooldown is not None and f.cooldown >= 60 and "daily" in f.reason
    info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
    bad_key = {
        "error": {
            "code": 400,
            "status": "INVALID_ARGUMENT",
            "message": "API key not valid.",
            "details": [info],
        }
    }
    f = g.failure(400, httpx.Headers(), json.dumps(bad_key).encode())
    assert f.retry and f.retire
    f = g.failure(400, httpx.Headers(), b'{"error": {"code": 400, "message": "bad schema"}}')
    assert not f.retry


def test_openrouter_failures() -> None:
    o = OpenRouterBackend("http://x", "s", "t")
    assert o.failure(402, httpx.Headers(), b"{}").retire
    reset = str(int((time.time() + 20) * 1000))
    f = o.failure(429, httpx.Headers({"x-ratelimit-reset": reset}), b"{}")
    assert f.rest and 15 < (f.cooldown or 0) <= 21
    assert o.failure(429, httpx.Headers({"retry-after": "3"}), b"{}").cooldown == 3


def test_error_bodies_in_openai_shape() -> None:
    t = normalise_error(
        "OpenRouter",
        402,
        httpx.Headers({"retry-after": "5"}),
        b'{"error":{"code":402,"message":"no credits"}}',
    )
    err = json.loads(t.body)["error"]
    assert (err["message"], err["code"], err["type"]) == ("no credits", "402", "insufficient_quota")
    assert t.headers["retry-after"] == "5"
    t = normalise_error("OpenRouter", 502, httpx.Headers(), b"")
    assert json.loads(t.body)["error"]["message"] == "OpenRouter returned HTTP 502 with an empty body"


MODEL = "gemini-2.5-flash"


def test_flow_comment_and_client_request() -> None:
    record = CallRecord(
        session="s1", stream=False, commands=["!/set(project=p)"], backend="gemini", model="gemini-2.5-flash",
        key="GEMINI_API_KEY_2", route="fast", status=200,
        attempts=[
            AttemptRecord("gemini", MODEL, "GEMINI_API_KEY_1", 429, "rate limited", 12.0),
            AttemptRecord("gemini", MODEL, "GEMINI_API_KEY_2", 200, None, 80.4),
        ],
        usage=Usage(prompt_tokens=3, completion_tokens=4),
    )  # fmt: skip
    c = flowview.comment(record)
    assert c.startswith("gemini:gemini-2.5-flash key GEMINI_API_KEY_2 via route fast")
    assert "GEMINI_API_KEY_1 429 12ms → gemini:gemini-2.5-flash GEMINI_API_KEY_2 200 80ms" in c
    assert "tokens 3+4=7" in c and "commands !/set(project=p)" in c
    proxy_answer = CallRecord(session="x", stream=False, answered_by="proxy", usage=Usage())
    assert flowview.comment(proxy_answer) == "answered by llm-intercept · session x"
    secret = "sk-or-v1-" + "z" * 40
    view = flowview.client_request(
        "POST", "http://h/v1/chat/completions", {"Authorization": "Bearer tok", "X-Other": "1"},
        json.dumps({"messages": [{"role": "user", "content": secret}]}).encode(), Redactor([secret]),
    )  # fmt: skip
    assert ["Authorization", "********"] in view["headers"] and ["X-Other", "1"] in view["headers"]
    assert secret not in view["body"] and "[REDACTED_API_KEY]" in view["body"]

"""Error answers before a stream, and the codes of a failed response."""

from __future__ import annotations

import json
from typing import Any

import pytest

from translators.responses import from_openai, response_error

CONTEXT = (
    "This model's maximum context length is 128000 tokens. However, your messages resulted in 130001 tokens."
)


def test_an_openai_error_keeps_its_status_and_fields() -> None:
    body = {"error": {"message": "bad", "type": "invalid_request_error", "param": "input", "code": "x"}}
    status, out = from_openai(400, json.dumps(body).encode())
    assert status == 400 and json.loads(out) == body


def test_context_length_gets_its_code_even_when_upstream_left_it_out() -> None:
    body = {"error": {"message": CONTEXT, "type": "invalid_request_error", "param": None, "code": None}}
    status, out = from_openai(400, json.dumps(body).encode())
    assert status == 400 and json.loads(out)["error"]["code"] == "context_length_exceeded"
    assert json.loads(out)["error"]["message"] == CONTEXT  # the numbers stay readable


@pytest.mark.parametrize("body", [b"<html>502 Bad Gateway</html>", b"", b'{"no": "error"}', b"\xff\xfe"])
def test_unreadable_bodies_become_an_openai_error(body: bytes) -> None:
    status, out = from_openai(502, body)
    err = json.loads(out)["error"]
    assert (
        status == 502
        and err["type"] == "api_error"
        and err["message"].startswith("the upstream failed with HTTP 502")
    )
    assert set(err) == {"message", "type", "param", "code"}


def test_a_non_error_status_is_never_passed_on() -> None:
    assert from_openai(200, b"{}")[0] == 502


@pytest.mark.parametrize(
    ("err", "code"),
    [
        ({"message": CONTEXT, "type": "invalid_request_error"}, "context_length_exceeded"),
        ({"message": "too long", "code": "context_length_exceeded"}, "context_length_exceeded"),
        ({"message": "no credit", "type": "insufficient_quota"}, "insufficient_quota"),
        ({"message": "slow down", "type": "rate_limit_error"}, "rate_limit_exceeded"),
        ({"message": "bad image", "type": "invalid_request_error"}, "invalid_prompt"),
        ({"message": "no key", "type": "authentication_error"}, "invalid_prompt"),
        ({"message": "boom", "type": "api_error", "code": "upstream_stream_error"}, "server_error"),
        ("not even an object", "server_error"),
    ],
)
def test_failed_response_codes(err: Any, code: str) -> None:
    out = response_error(err)
    assert out["code"] == code and isinstance(out["message"], str) and out["message"]

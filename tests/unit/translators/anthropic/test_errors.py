"""translators/anthropic/errors.py: internal OpenAI errors -> Anthropic error bodies and events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.translators.anthropic.support import parse_events
from translators.anthropic import error_body, from_openai, stream_error
from translators.openai.synthetic import error_body as openai_error


def test_error_body_shape() -> None:
    assert json.loads(error_body("nope", "not_found_error")) == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "nope"},
    }


@pytest.mark.parametrize(
    ("status", "out_status", "type_"),
    [
        (400, 400, "invalid_request_error"),
        (401, 401, "authentication_error"),
        (402, 402, "billing_error"),
        (403, 403, "permission_error"),
        (404, 404, "not_found_error"),
        (408, 408, "timeout_error"),
        (409, 409, "invalid_request_error"),
        (413, 413, "request_too_large"),
        (422, 422, "invalid_request_error"),
        (429, 429, "rate_limit_error"),
        (500, 500, "api_error"),
        (502, 502, "api_error"),
        (503, 529, "overloaded_error"),
        (504, 504, "timeout_error"),
        (529, 529, "overloaded_error"),
        (200, 500, "api_error"),  # not an error status: still answered as one
    ],
)
def test_status_mapping(status: int, out_status: int, type_: str) -> None:
    got_status, body = from_openai(status, openai_error("upstream said no", status))
    assert got_status == out_status
    assert json.loads(body) == {"type": "error", "error": {"type": type_, "message": "upstream said no"}}


@pytest.mark.parametrize("body", [None, {}, {"error": "text"}, [1], {"error": {"message": 5}}])
def test_unreadable_bodies_still_give_a_message(body: Any) -> None:
    status, raw = from_openai(502, body)
    assert status == 502
    assert json.loads(raw)["error"] == {"type": "api_error", "message": "upstream error (HTTP 502)"}


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("UNAVAILABLE", "try later"),
        ("overloaded", "busy"),
        (None, "The model is overloaded. Please try again later."),
    ],
)
def test_overload_signals_become_529(code: str | None, message: str) -> None:
    status, raw = from_openai(500, openai_error(message, 500, code=code))
    assert status == 529 and json.loads(raw)["error"] == {"type": "overloaded_error", "message": message}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "This model's maximum context length is 128000 tokens. However, your messages resulted in "
            "200345 tokens. Please reduce the length of the messages.",
            "prompt is too long: 200345 tokens > 128000 maximum",
        ),
        (
            "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens "
            "(8000 in the messages, 1000 in the completion).",
            "prompt is too long: 9000 tokens > 8192 maximum",
        ),
        (
            "The input is too long for this model.",
            "prompt is too long: The input is too long for this model.",
        ),
        ("", "prompt is too long: the upstream gave no token counts"),
    ],
)
def test_context_length_wording(message: str, expected: str) -> None:
    status, raw = from_openai(400, openai_error(message, 400, code="context_length_exceeded"))
    assert status == 400
    assert json.loads(raw)["error"] == {"type": "invalid_request_error", "message": expected}
    # the same wording without the code (an upstream that only says it in words) is recognised too
    if "maximum context length" in message:
        assert json.loads(from_openai(413, openai_error(message, 413))[1])["error"]["message"] == expected


@pytest.mark.parametrize(
    ("error", "type_"),
    [
        ({"error": {"message": "m", "type": "rate_limit_error", "code": None}}, "rate_limit_error"),
        ({"message": "m", "type": "authentication_error"}, "authentication_error"),  # the inner object
        ({"message": "m", "type": "insufficient_quota"}, "billing_error"),
        (
            {"message": "m", "type": "invalid_request_error", "code": "RESOURCE_EXHAUSTED"},
            "invalid_request_error",
        ),
        ({"message": "m", "type": "api_error", "code": 429}, "rate_limit_error"),  # numeric code = status
        ({"message": "m", "code": 503}, "overloaded_error"),
        ({"message": "m"}, "api_error"),
    ],
)
def test_stream_error_event(error: dict[str, Any], type_: str) -> None:
    raw = stream_error(error)
    assert raw.startswith(b"event: error\ndata: ") and raw.endswith(b"\n\n")
    assert parse_events(raw) == [{"type": "error", "error": {"type": type_, "message": "m"}}]


@pytest.mark.parametrize("code", ["no_api_key", "store_unavailable"])
def test_the_proxys_own_503s_are_not_overload(code: str) -> None:
    # Claude clients back off and retry on 529; a missing key or a store away is no load to wait out.
    status, body = from_openai(503, {"error": {"message": "No API key configured", "code": code}})
    assert status == 503 and json.loads(body)["error"]["type"] == "api_error"

"""translators/gemini/errors.py: Gemini error bodies -> OpenAI errors."""

from __future__ import annotations

import json

import pytest

from tests.fakes.fake_gemini import rate_limit_body
from translators.gemini import gemini_error_to_openai, retry_info


def test_rate_limit_with_fractional_retry_delay() -> None:
    body = json.dumps(rate_limit_body("29.723877525s")).encode()
    status, err, retry_after = gemini_error_to_openai(429, body)
    assert status == 429
    assert retry_after == pytest.approx(29.723877525)
    assert err["error"]["type"] == "rate_limit_error"
    assert err["error"]["code"] == "RESOURCE_EXHAUSTED"
    assert err["error"]["param"] is None
    assert "exceeded your current quota" in err["error"]["message"]
    assert retry_info(body) == (pytest.approx(29.723877525), False)


def test_per_day_quota_is_recognised() -> None:
    body = json.dumps(rate_limit_body("45.83s", per_day=True)).encode()
    assert retry_info(body) == (pytest.approx(45.83), True)
    _, err, _ = gemini_error_to_openai(429, body)
    assert "per-day quota" in err["error"]["message"]


@pytest.mark.parametrize(
    ("text", "seconds"), [("Please retry in 47.88s.", 47.88), ("Please retry in 379.612354ms.", 0.379612354)]
)
def test_retry_delay_falls_back_to_the_message(text: str, seconds: float) -> None:
    body = json.dumps(
        {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": f"Quota. {text}"}}
    ).encode()
    assert retry_info(body) == (pytest.approx(seconds), False)
    assert gemini_error_to_openai(429, body)[2] == pytest.approx(seconds)


def test_invalid_key_is_reported_clearly_and_never_echoed() -> None:
    key = "AIzaSyA1234567890abcdefghijklmnopqrstuv"
    body = json.dumps(
        {
            "error": {
                "code": 400,
                "status": "INVALID_ARGUMENT",
                "message": f"API key not valid. Please pass a valid API key. (key={key})",
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
                ],
            }
        }
    ).encode()
    status, err, retry = gemini_error_to_openai(400, body)
    assert status == 400 and retry is None
    assert err["error"]["code"] == "API_KEY_INVALID"
    assert "API key configured in the proxy" in err["error"]["message"]
    assert key not in json.dumps(err) and key[4:20] not in json.dumps(err)


@pytest.mark.parametrize(
    ("status", "google_status", "openai_type"),
    [
        (400, "INVALID_ARGUMENT", "invalid_request_error"),
        (400, "FAILED_PRECONDITION", "invalid_request_error"),
        (403, "PERMISSION_DENIED", "permission_error"),
        (404, "NOT_FOUND", "not_found_error"),
        (500, "INTERNAL", "api_error"),
        (503, "UNAVAILABLE", "api_error"),
        (504, "DEADLINE_EXCEEDED", "api_error"),
    ],
)
def test_status_errors_keep_status_message_and_code(
    status: int, google_status: str, openai_type: str
) -> None:
    body = json.dumps(
        {"error": {"code": status, "message": f"upstream says {status}", "status": google_status}}
    ).encode()
    out_status, err, retry = gemini_error_to_openai(status, body)
    assert (out_status, retry) == (status, None)
    assert err == {
        "error": {
            "message": f"upstream says {status}",
            "type": openai_type,
            "param": None,
            "code": google_status,
        }
    }


def test_garbage_and_wrapped_error_bodies() -> None:
    status, err, retry = gemini_error_to_openai(502, b"<html>Bad Gateway</html>")
    assert status == 502 and retry is None
    assert "HTTP 502" in err["error"]["message"] and "<html>Bad Gateway</html>" in err["error"]["message"]
    status, err, _ = gemini_error_to_openai(503, b"")
    assert status == 503 and "empty body" in err["error"]["message"]
    status, err, _ = gemini_error_to_openai(500, b"x" * 5000)
    assert len(err["error"]["message"]) < 300
    wrapped = json.dumps(
        [{"error": {"code": 404, "message": "models/x is not found", "status": "NOT_FOUND"}}]
    ).encode()
    assert gemini_error_to_openai(404, wrapped)[1]["error"]["code"] == "NOT_FOUND"
    assert retry_info(b"\xff\xfe not json") == (None, False)

"""translators/gemini/count.py: countTokens requests count what generateContent would get."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.fake_gemini import validate_request
from translators.gemini import (
    TranslationError,
    count_tokens_path,
    read_token_count,
    to_count_tokens_request,
    to_gemini_request,
)

REQUEST = {
    "model": "client-name",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "weather in Paris?"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ],
    "max_tokens": 50,
    "stream": True,
}


@pytest.mark.parametrize(
    ("model", "resource"),
    [("gemini-2.5-flash", "models/gemini-2.5-flash"), ("models/gemini-2.5-pro", "models/gemini-2.5-pro")],
)
def test_count_request_wraps_the_whole_generate_request(model: str, resource: str) -> None:
    out = to_count_tokens_request(REQUEST, model=model)
    assert list(out) == ["generateContentRequest"]
    inner = dict(out["generateContentRequest"])
    assert inner.pop("model") == resource  # required inside generateContentRequest
    assert inner == to_gemini_request(REQUEST, model=model)
    assert {"contents", "systemInstruction", "tools", "generationConfig"} <= set(inner)
    validate_request(inner)


def test_count_path_and_bad_requests() -> None:
    assert count_tokens_path("gemini-2.5-flash") == "/v1beta/models/gemini-2.5-flash:countTokens"
    assert count_tokens_path("models/a/b") == "/v1beta/models/a%2Fb:countTokens"
    with pytest.raises(TranslationError):
        count_tokens_path(" ")
    with pytest.raises(TranslationError) as exc:
        to_count_tokens_request({"messages": []}, model="gemini-2.5-flash")
    assert exc.value.param == "messages"


@pytest.mark.parametrize(
    ("data", "count"),
    [
        ({"totalTokens": 31, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 31}]}, 31),
        ({"totalTokens": 0}, 0),
        ({"totalTokens": -1}, None),
        ({"totalTokens": "31"}, None),
        ({"totalTokens": True}, None),
        ({"error": {"code": 400, "message": "bad"}}, None),
        ([{"totalTokens": 3}], None),
        ({}, None),
    ],
)
def test_read_token_count(data: Any, count: int | None) -> None:
    assert read_token_count(data) == count

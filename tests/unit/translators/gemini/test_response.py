"""translators/gemini/response.py: GenerateContentResponse -> chat.completion."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.translators.gemini.support import cand, counter_ids
from translators.gemini import GeminiFormatError, from_gemini_response
from translators.gemini.response import usage_from_metadata
from translators.gemini.signatures import SavedCall


def test_text_response_with_thoughts_and_usage() -> None:
    data = {
        "candidates": [
            cand([{"text": "Let me think", "thought": True}, {"text": "Hello"}, {"text": " world"}], "STOP")
        ],
        "usageMetadata": {
            "promptTokenCount": 10,
            "candidatesTokenCount": 5,
            "thoughtsTokenCount": 7,
            "totalTokenCount": 22,
            "cachedContentTokenCount": 4,
        },
        "modelVersion": "gemini-2.5-flash-001",
        "responseId": "abc123",
    }
    out = from_gemini_response(data, model="my-alias")
    assert out["id"] == "chatcmpl-abc123"
    assert out["object"] == "chat.completion" and out["model"] == "my-alias"
    assert isinstance(out["created"], int)
    assert out["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello world",
                "refusal": None,
                "reasoning_content": "Let me think",
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert out["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 12,  # candidates did not include thoughts: 10 + 5 != 22
        "total_tokens": 22,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 7},
    }


@pytest.mark.parametrize(
    ("meta", "prompt", "completion"),
    [
        (
            {
                "promptTokenCount": 10,
                "candidatesTokenCount": 12,
                "thoughtsTokenCount": 7,
                "totalTokenCount": 22,
            },
            10,
            12,
        ),
        (
            {
                "promptTokenCount": 10,
                "candidatesTokenCount": 5,
                "toolUsePromptTokenCount": 3,
                "totalTokenCount": 18,
            },
            13,
            5,
        ),
        ({}, 0, 0),
    ],
)
def test_usage_counts_thoughts_once(meta: dict[str, int], prompt: int, completion: int) -> None:
    usage = usage_from_metadata(meta)
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (prompt, completion)


def test_tool_call_response_hands_out_short_ids_and_keeps_signatures_and_native_ids() -> None:
    data = {
        "candidates": [
            cand(
                [
                    {
                        "functionCall": {"id": "native-1", "name": "a", "args": {"x": "é"}},
                        "thoughtSignature": "c2ln",
                    },
                    {"functionCall": {"name": "b"}},
                ],
                "STOP",
            )
        ]
    }
    kept: dict[str, str] = {}
    out = from_gemini_response(data, model="m", id_factory=counter_ids(), kept=kept)
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "a", "arguments": '{"x": "é"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "b", "arguments": "{}"}},
    ]
    assert kept == {"call_1": SavedCall("c2ln", "native-1").pack()}  # the second call has neither
    assert out["id"] == "chatcmpl-3"


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        *(
            (r, "content_filter")
            for r in ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE", "OTHER")
        ),
        ("IMAGE_SAFETY", "content_filter"),
        ("IMAGE_PROHIBITED_CONTENT", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        ("FINISH_REASON_UNSPECIFIED", "stop"),
        ("SOMETHING_NEW", "stop"),
    ],
)
def test_finish_reasons(reason: str, expected: str) -> None:
    out = from_gemini_response({"candidates": [cand([{"text": "x"}], reason)]}, model="m")
    assert out["choices"][0]["finish_reason"] == expected
    with_call = {"candidates": [cand([{"functionCall": {"name": "f", "args": {}}}], reason)]}
    assert from_gemini_response(with_call, model="m")["choices"][0]["finish_reason"] == "tool_calls"


def test_blocked_prompt_gives_null_content_and_content_filter() -> None:
    data = {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3},
    }
    out = from_gemini_response(data, model="m")
    assert out["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": None, "refusal": None},
            "logprobs": None,
            "finish_reason": "content_filter",
        }
    ]
    assert out["usage"]["prompt_tokens"] == 3
    safety = from_gemini_response({"candidates": [{"finishReason": "SAFETY", "index": 0}]}, model="m")
    assert safety["choices"][0]["message"]["content"] is None


def test_several_candidates_become_ordered_choices() -> None:
    data = {
        "candidates": [
            cand([{"text": "two"}], "STOP", index=1),
            cand([{"text": "one"}], "MAX_TOKENS", index=0),
        ]
    }
    choices = from_gemini_response(data, model="m")["choices"]
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in choices] == [
        (0, "one", "length"),
        (1, "two", "stop"),
    ]


@pytest.mark.parametrize("data", [[], {"error": {"code": 500}}, {"candidates": "nope"}])
def test_non_responses_raise_format_error(data: Any) -> None:
    with pytest.raises(GeminiFormatError):
        from_gemini_response(data, model="m")

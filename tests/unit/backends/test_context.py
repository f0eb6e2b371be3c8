"""Context-length failures: every provider's wording -> OpenAI's code and sentence, final for failover."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from addons.backends.errors import normalise_error
from addons.backends.gemini import GeminiBackend
from addons.backends.openrouter import OpenRouterBackend
from tests.unit.translators.gemini.support import FAST, gemini_sse, run_stream
from translators.gemini import gemini_error_to_openai
from translators.openai.context import CONTEXT_CODE, context_error, parse_context

# What a front-end does with our message: read both numbers back out.
OPENAI_SENTENCE = re.compile(
    r"maximum context length is (\d+) tokens\. However, your messages resulted in (\d+) tokens"
)


def numbers(message: str) -> tuple[str, str] | None:
    """(window, tokens sent) as a front-end reads them out of OpenAI's sentence."""
    match = OPENAI_SENTENCE.search(message)
    return (match.group(1), match.group(2)) if match else None


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 "
            "tokens. Please reduce the length of the messages.",
            (9000, 8192),
        ),
        (
            "This endpoint's maximum context length is 131072 tokens. However, you requested about 200345 "
            "tokens (190000 of text input, 10345 in the output). Please reduce the length of either one, "
            'or use the "middle-out" transform to compress your prompt automatically.',
            (200345, 131072),
        ),
        (
            "This model's maximum context length is 4097 tokens. However, you requested 4200 tokens "
            "(3000 in the messages, 1200 in the completion).",
            (4200, 4097),
        ),
        (
            "The input token count (1200293) exceeds the maximum number of tokens allowed (1048576).",
            (1200293, 1048576),
        ),
        ("The input token count exceeds the maximum number of tokens allowed 1048576.", (None, 1048576)),
        ("prompt is too long: 208310 tokens > 200000 maximum", (208310, 200000)),
        ("Your input exceeds the context window of this model.", (None, None)),
        ("context_length_exceeded", (None, None)),
        ("Request failed: context length exceeded", (None, None)),
        ("Rate limit exceeded: free-models-per-min.", None),
        ("Invalid API key", None),
        ("max_tokens is too large: 99999", None),
    ],
)
def test_parse_context_wordings(message: str, expected: tuple[int | None, int | None] | None) -> None:
    assert parse_context(message) == expected


@given(n=st.integers(min_value=0, max_value=10**9), m=st.integers(min_value=0, max_value=10**9))
@FAST
def test_our_sentence_reads_back_as_the_same_numbers(n: int, m: int) -> None:
    err = context_error(n, m, "whatever the provider said")["error"]
    assert (err["code"], err["type"], err["param"]) == (CONTEXT_CODE, "invalid_request_error", "messages")
    assert numbers(err["message"]) == (str(m), str(n))
    assert parse_context(err["message"]) == (n, m)


def test_without_both_numbers_the_provider_words_stay() -> None:
    original = "The input token count exceeds the maximum number of tokens allowed 1048576."
    assert context_error(None, 1048576, original)["error"]["message"] == original
    assert context_error(None, None, "  ")["error"]["message"].startswith("The request exceeds")


def gemini_body(message: str, code: int = 400, status: str = "INVALID_ARGUMENT") -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "status": status}}).encode()


def test_gemini_context_error_is_translated_and_final() -> None:
    body = gemini_body(
        "The input token count (317740) exceeds the maximum number of tokens allowed (131072)."
    )
    status, err, _ = gemini_error_to_openai(400, body)
    assert status == 400 and err["error"]["code"] == CONTEXT_CODE
    assert numbers(err["error"]["message"]) == ("131072", "317740")
    translated = GeminiBackend("http://x").translate_response(400, httpx.Headers(), body, "gemini-2.5-pro")
    assert json.loads(translated.body) == err and translated.status == 400
    failure = GeminiBackend("http://x").failure(400, httpx.Headers(), body)
    assert failure.other_model and not failure.rest and "context length" in failure.reason
    # Other 400s keep Gemini's own code; a 429 about tokens is a rate limit, not a window.
    assert gemini_error_to_openai(400, gemini_body("bad schema"))[1]["error"]["code"] == "INVALID_ARGUMENT"
    quota = gemini_body("Quota exceeded: input token count per minute", 429, "RESOURCE_EXHAUSTED")
    assert GeminiBackend("http://x").failure(429, httpx.Headers(), quota).retry


def test_gemini_mid_stream_context_error_event_carries_the_code() -> None:
    event = json.loads(
        gemini_body("The input token count (9) exceeds the maximum number of tokens allowed (8).")
    )
    out = run_stream(gemini_sse(event))
    assert out[-1]["error"]["code"] == CONTEXT_CODE and "resulted in 9 tokens" in out[-1]["error"]["message"]


def test_openrouter_context_error_in_message_or_relayed_raw_body() -> None:
    said = (
        "This endpoint's maximum context length is 131072 tokens. However, you requested about 200345 "
        "tokens (190000 of text input, 10345 in the output)."
    )
    o = OpenRouterBackend("http://x", "s", "t")
    body = json.dumps({"error": {"code": 400, "message": said}}).encode()
    err = json.loads(o.translate_response(400, httpx.Headers(), body, "m").body)["error"]
    assert err["code"] == CONTEXT_CODE and numbers(err["message"]) == ("131072", "200345")
    assert o.failure(400, httpx.Headers(), body).other_model
    raw = json.dumps({"error": {"message": "prompt is too long: 208310 tokens > 200000 maximum"}})
    relayed = {
        "error": {
            "code": 400,
            "message": "Provider returned error",
            "metadata": {"raw": raw, "provider_name": "A"},
        }
    }
    t = normalise_error("OpenRouter", 400, httpx.Headers(), json.dumps(relayed).encode())
    err = json.loads(t.body)["error"]
    assert err["code"] == CONTEXT_CODE and "resulted in 208310 tokens" in err["message"]
    assert err["metadata"]["provider_name"] == "A"  # OpenRouter's details still ride along
    # A 5xx that says so is final too: another key has the same window.
    assert o.failure(502, httpx.Headers(), json.dumps(relayed).encode()).other_model
    assert o.failure(502, httpx.Headers(), b'{"error": {"message": "upstream down"}}').retry

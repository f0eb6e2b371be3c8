"""translators/anthropic: signatures.py, models.py, tokens.py."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.translators.anthropic.support import FAST, claude_code_body
from translators.anthropic import (
    decode_signature,
    encode_signature,
    estimate,
    model_entry,
    model_list,
    to_chat,
)
from translators.anthropic.tokens import DOCUMENT_TOKENS, IMAGE_TOKENS


@given(st.text(min_size=1, max_size=300))
@FAST
def test_our_signatures_round_trip(sig: str) -> None:
    assert decode_signature(encode_signature(sig)) == sig


@pytest.mark.parametrize(
    "foreign",
    ["EqQBCkgIARABGAIiQLp", "", "llmi1.", "llmi2.abc", "LLMI1.abc", None, 5, {"sig": "llmi1.x"}],
)
def test_foreign_signatures_are_dropped(foreign: Any) -> None:
    assert decode_signature(foreign) is None


def test_model_list_shape() -> None:
    assert model_entry("m1") == {
        "type": "model",
        "id": "m1",
        "display_name": "m1",
        "created_at": "1970-01-01T00:00:00Z",
        "lifecycle": "active",
    }
    page = model_list(["a", "b", "c"])
    assert [m["id"] for m in page["data"]] == ["a", "b", "c"]
    assert (page["has_more"], page["first_id"], page["last_id"]) == (False, "a", "c")
    assert model_list([]) == {"data": [], "has_more": False, "first_id": None, "last_id": None}


def _chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": list(messages), **extra}


def test_estimate_counts_text_messages_media_calls_and_tools() -> None:
    empty = estimate(_chat())
    assert empty == 0
    assert estimate(_chat({"role": "user", "content": "x" * 400})) == 4 + 100
    parts = [
        {"type": "text", "text": "y" * 40},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,AAAA"}},
    ]
    assert estimate(_chat({"role": "user", "content": parts})) == 4 + 10 + IMAGE_TOKENS + DOCUMENT_TOKENS
    call = {"id": "c", "type": "function", "function": {"name": "abcd", "arguments": "e" * 36}}
    assistant = {"role": "assistant", "content": None, "tool_calls": [call], "reasoning_content": "r" * 40}
    assert estimate(_chat(assistant)) == 4 + 20
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    assert estimate(_chat(tools=tools)) > 0


@given(st.text(max_size=2000), st.text(min_size=1, max_size=500))
@FAST
def test_estimate_grows_with_the_prompt(base: str, extra: str) -> None:
    short = estimate(_chat({"role": "user", "content": base}))
    longer = estimate(_chat({"role": "user", "content": base + extra * 4}))
    more = estimate(_chat({"role": "user", "content": base}, {"role": "user", "content": extra}))
    assert longer > short and more > short


def test_estimate_of_a_claude_code_request_is_plausible() -> None:
    chat = to_chat(claude_code_body()).chat
    assert 100 < estimate(chat) < 2000


@pytest.mark.parametrize("junk", [{}, {"messages": None}, {"messages": ["x", {"content": 5}]}, {"tools": []}])
def test_estimate_tolerates_odd_input(junk: dict[str, Any]) -> None:
    assert estimate(junk) >= 0

"""translators/gemini/signatures.py: thought signatures kept for the tool call ids we hand out (see also
test_signature_store_translation.py), and the previous version's ids that carried them inside."""

from __future__ import annotations

import base64
import json

from hypothesis import given
from hypothesis import strategies as st

from tests.fakes.fake_gemini import DUMMY_SIGNATURE
from tests.unit.translators.gemini.support import FAST, cand, tool_call, translate
from translators.gemini import (
    decode_tool_call_id,
    encode_tool_call_id,
    from_gemini_response,
    signatures,
    to_gemini_request,
)


@given(base=st.from_regex(r"call_[0-9a-f]{24}", fullmatch=True), signature=st.text(min_size=1, max_size=300))
@FAST
def test_tool_call_id_carries_any_signature_exactly(base: str, signature: str) -> None:
    call_id = encode_tool_call_id(base, signature)
    assert call_id.startswith(base + "__ts__")
    assert all(c.isascii() and (c.isalnum() or c in "_-") for c in call_id)
    assert decode_tool_call_id(call_id) == (base, signature)


def test_tool_call_id_without_or_with_broken_signature() -> None:
    assert encode_tool_call_id("call_1", None) == "call_1"
    assert decode_tool_call_id("call_1") == ("call_1", None)
    assert decode_tool_call_id("call_1__ts__") == ("call_1__ts__", None)
    assert decode_tool_call_id("call_1__ts__%%%") == ("call_1", None)


def test_thought_signature_survives_a_plain_openai_client() -> None:
    signature = base64.b64encode(b"\x00opaque-signature\xff" * 20).decode()
    gemini_answer = {
        "candidates": [
            cand(
                [
                    {
                        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                        "thoughtSignature": signature,
                    },
                    {"functionCall": {"name": "get_time", "args": {}}},
                ],
                "STOP",
            )
        ]
    }
    kept: dict[str, str] = {}
    message = from_gemini_response(gemini_answer, model="m", kept=kept)["choices"][0]["message"]
    # The client only ever sees and returns plain short tool call ids; the store gives back the rest.
    assert all(len(tc["id"]) <= 40 for tc in message["tool_calls"])
    history = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": message["tool_calls"]},
        *({"role": "tool", "tool_call_id": tc["id"], "content": "ok"} for tc in message["tool_calls"]),
    ]
    request = {"model": "client-name", "messages": json.loads(json.dumps(history))}
    out = to_gemini_request(signatures.with_saved_calls(request, kept), model="gemini-3-pro-preview")
    first, second = out["contents"][1]["parts"]
    assert first == {
        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
        "thoughtSignature": signature,
    }
    assert second == {"functionCall": {"name": "get_time", "args": {}}}
    assert [p["functionResponse"]["name"] for p in out["contents"][2]["parts"]] == ["get_weather", "get_time"]


def test_gemini3_gets_the_documented_placeholder_for_foreign_tool_history() -> None:
    history = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [tool_call("call_1", "f", "{}"), tool_call("call_2", "f", "{}")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "a"},
        {"role": "tool", "tool_call_id": "call_2", "content": "b"},
    ]
    parts = translate(history, model="gemini-3-pro-preview")["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == DUMMY_SIGNATURE == signatures.DUMMY_THOUGHT_SIGNATURE
    assert "thoughtSignature" not in parts[1]  # only the first call of a step is validated
    assert all("thoughtSignature" not in p for p in translate(history)["contents"][1]["parts"])

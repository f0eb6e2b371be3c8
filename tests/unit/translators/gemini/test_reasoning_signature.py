"""Thought signatures outside tool call ids: `reasoning_signature` in answers, streams and history."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.fakes.fake_gemini import DUMMY_SIGNATURE, validate_request
from tests.unit.translators.gemini.support import (
    FAST,
    cand,
    counter_ids,
    gemini_sse,
    run_stream,
    tool_call,
    translate,
)
from translators.gemini import encode_tool_call_id, from_gemini_response
from translators.gemini.signatures import SavedCall

GEMINI3 = "gemini-3-pro-preview"


def assistant_parts(message: dict[str, Any], model: str = GEMINI3) -> list[dict[str, Any]]:
    history = [{"role": "user", "content": "q"}, message, {"role": "user", "content": "next"}]
    out = translate(history, model=model)
    validate_request(out)
    return out["contents"][1]["parts"]


def test_signature_of_a_text_turn_goes_back_on_its_part_and_thought_text_stays_home() -> None:
    parts = assistant_parts(
        {"role": "assistant", "content": "Paris.", "reasoning_content": "hmm", "reasoning_signature": "U0lH"}
    )
    assert parts == [{"text": "Paris.", "thoughtSignature": "U0lH"}]


def test_signature_goes_to_the_first_unsigned_call_and_never_replaces_one() -> None:
    signed = tool_call(encode_tool_call_id("call_1", "T1dO"), "f", "{}")
    message = {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [signed, tool_call("call_2", "g", "{}")],
        "reasoning_signature": "UkVB",
    }
    parts = assistant_parts(message)
    assert [p.get("thoughtSignature") for p in parts] == [None, "T1dO", "UkVB"]
    message["tool_calls"] = [tool_call("call_1", "f", "{}")]
    parts = assistant_parts(message)
    assert [p.get("thoughtSignature") for p in parts] == [None, "UkVB"]  # no placeholder needed any more
    message["tool_calls"] = [signed]
    parts = assistant_parts(message)
    assert [p.get("thoughtSignature") for p in parts] == ["UkVB", "T1dO"]  # the text part, the last unsigned
    message["content"] = None
    assert [p.get("thoughtSignature") for p in assistant_parts(message)] == ["T1dO"]


def test_without_a_signature_gemini3_history_still_gets_the_placeholder() -> None:
    parts = assistant_parts({"role": "assistant", "tool_calls": [tool_call("call_1", "f", "{}")]})
    assert parts[0]["thoughtSignature"] == DUMMY_SIGNATURE


def test_answer_surfaces_the_first_signature_not_kept_for_a_tool_call() -> None:
    data = {
        "candidates": [
            cand(
                [
                    {"text": "plan", "thought": True, "thoughtSignature": "Rmlyc3Q="},
                    {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "Q2FsbA=="},
                    {"text": "", "thoughtSignature": "U2Vjb25k"},
                ],
                "STOP",
            )
        ]
    }
    kept: dict[str, str] = {}
    message = from_gemini_response(data, model="m", id_factory=counter_ids(), kept=kept)["choices"][0][
        "message"
    ]
    assert message["reasoning_signature"] == "Rmlyc3Q="
    assert message["tool_calls"][0]["id"] == "call_1" and kept == {"call_1": SavedCall("Q2FsbA==").pack()}
    plain = from_gemini_response({"candidates": [cand([{"text": "hi"}], "STOP")]}, model="m")
    assert "reasoning_signature" not in plain["choices"][0]["message"]
    calls_only = {
        "candidates": [cand([{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "QQ=="}])]
    }
    assert "reasoning_signature" not in from_gemini_response(calls_only, model="m")["choices"][0]["message"]


def test_text_answer_signature_round_trips_through_a_client() -> None:
    data = {"candidates": [cand([{"text": "Hello"}, {"text": "", "thoughtSignature": "RW5k"}], "STOP")]}
    message = from_gemini_response(data, model="m")["choices"][0]["message"]
    sent_back = {k: message[k] for k in ("role", "content", "reasoning_signature")}
    assert assistant_parts(sent_back) == [{"text": "Hello", "thoughtSignature": "RW5k"}]


SIGNED_STREAM = gemini_sse(
    {
        "candidates": [cand([{"text": "thinking", "thought": True, "thoughtSignature": "VGg="}])],
        "responseId": "r",
    },
    {"candidates": [cand([{"text": "Hel"}])]},
    {"candidates": [cand([{"text": "lo"}, {"text": "", "thoughtSignature": "RW5k"}])]},
    {"candidates": [cand([{"text": "", "thoughtSignature": "TGFzdA=="}], "STOP")]},
)


def test_stream_sends_each_signature_with_its_part() -> None:
    out = run_stream(SIGNED_STREAM)
    deltas = [c["choices"][0]["delta"] for c in out[:-2]]  # not the usage chunk and [DONE]
    assert deltas == [
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "thinking",
            "reasoning_signature": "VGg=",
        },
        {"content": "Hel"},
        {"content": "lo", "reasoning_signature": "RW5k"},
        {"reasoning_signature": "TGFzdA=="},
        {},
    ]
    assert out[-3]["choices"][0]["finish_reason"] == "stop" and out[-1] == "[DONE]"


def test_stream_event_with_two_signed_parts_sends_both() -> None:
    raw = gemini_sse(
        {
            "candidates": [
                cand([{"text": "a", "thoughtSignature": "MQ=="}, {"text": "b", "thoughtSignature": "Mg=="}])
            ]
        },
        {"candidates": [cand([{"text": ""}], "STOP")]},
    )
    deltas = [c["choices"][0]["delta"] for c in run_stream(raw)[:-2]]
    assert deltas == [
        {"role": "assistant", "content": "ab", "reasoning_signature": "MQ=="},
        {"reasoning_signature": "Mg=="},
        {},
    ]


def _without_created(chunks: list[Any]) -> list[Any]:
    return [{k: v for k, v in c.items() if k != "created"} if isinstance(c, dict) else c for c in chunks]


@given(st.lists(st.integers(min_value=0, max_value=len(SIGNED_STREAM)), max_size=8))
@FAST
def test_any_split_of_a_signed_stream_gives_the_same_chunks(cuts: list[int]) -> None:
    whole = _without_created(run_stream(SIGNED_STREAM))
    assert _without_created(run_stream(SIGNED_STREAM, splits=sorted(cuts))) == whole

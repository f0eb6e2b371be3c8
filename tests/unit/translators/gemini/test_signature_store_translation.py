"""Thought signatures and Gemini's own call ids outside the tool call ids: what the answer translators leave
for the signature store, and what the request translator makes of what the store gives back.

Google's references: thought signatures, https://ai.google.dev/gemini-api/docs/thought-signatures (the
signature must come back on the functionCall part it came on; `skip_thought_signature_validator` for
history Gemini did not produce); FunctionCall.id / FunctionResponse.id,
https://ai.google.dev/api/caching#FunctionCall ("If populated, the client to execute the function_call and
return the response with the matching id").
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.fakes.fake_gemini import DUMMY_SIGNATURE, validate_request
from tests.unit.translators.gemini.support import (
    FAST,
    cand,
    counter_ids,
    gemini_sse,
    parse_sse,
    tool_call,
)
from translators.gemini import GeminiStreamTranslator, encode_tool_call_id, from_gemini_response
from translators.gemini.request import to_gemini_request
from translators.gemini.signatures import SavedCall, with_saved_calls

GEMINI3 = "gemini-3-pro-preview"
LONG_SIGNATURE = "c2lnbmF0dXJl" * 600  # ~7 KB, as Gemini 3 sends them
SIGNED_CALLS = {
    "candidates": [
        cand(
            [
                {"text": "Checking."},
                {
                    "functionCall": {"id": "7k2m9xq1", "name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": LONG_SIGNATURE,
                },
                {"functionCall": {"id": "p3v8w0z5", "name": "get_time", "args": {}}},
                {"functionCall": {"name": "get_news", "args": {}}},
            ],
            "STOP",
        )
    ]
}


def _translate(messages: list[dict[str, Any]], saved: dict[str, str], model: str = GEMINI3) -> dict[str, Any]:
    request = {"model": "client-name", "messages": messages}
    out = to_gemini_request(with_saved_calls(request, saved), model=model)
    validate_request(out)
    return out


def _history(message: dict[str, Any]) -> list[dict[str, Any]]:
    results = [{"role": "tool", "tool_call_id": c["id"], "content": "ok"} for c in message["tool_calls"]]
    return [{"role": "user", "content": "weather?"}, message, *results]


def test_answer_hands_out_short_ids_and_keeps_signatures_and_gemini_ids() -> None:
    kept: dict[str, str] = {}
    message = from_gemini_response(SIGNED_CALLS, model="m", id_factory=counter_ids(), kept=kept)["choices"][
        0
    ]["message"]
    assert [c["id"] for c in message["tool_calls"]] == ["call_1", "call_2", "call_3"]
    assert "reasoning_signature" not in message  # the call's signature is kept, not surfaced
    assert {k: SavedCall.unpack(v) for k, v in kept.items()} == {
        "call_1": SavedCall(LONG_SIGNATURE, "7k2m9xq1"),
        "call_2": SavedCall(None, "p3v8w0z5"),
    }  # call_3 had neither: nothing to keep


def test_random_ids_stay_within_openais_limit() -> None:
    message = from_gemini_response(SIGNED_CALLS, model="m", kept={})["choices"][0]["message"]
    ids = [c["id"] for c in message["tool_calls"]]
    assert len(set(ids)) == 3 and all(i.startswith("call_") and len(i) <= 40 for i in ids)
    assert all(LONG_SIGNATURE not in i and "7k2m9xq1" not in i for i in ids)


def test_the_next_turn_gets_back_signatures_and_gemini_ids_from_the_store() -> None:
    kept: dict[str, str] = {}
    message = from_gemini_response(SIGNED_CALLS, model="m", id_factory=counter_ids(), kept=kept)["choices"][
        0
    ]["message"]
    sent_back = {k: message[k] for k in ("role", "content", "tool_calls")}
    request = {"model": "x", "messages": json.loads(json.dumps(_history(sent_back)))}
    before = json.dumps(request)
    out = to_gemini_request(with_saved_calls(request, kept), model=GEMINI3)
    validate_request(out)
    assert json.dumps(request) == before  # the caller's request is untouched
    model_turn, results = out["contents"][1]["parts"], out["contents"][2]["parts"]
    assert model_turn == [
        {"text": "Checking."},
        {
            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "7k2m9xq1"},
            "thoughtSignature": LONG_SIGNATURE,
        },
        {"functionCall": {"name": "get_time", "args": {}, "id": "p3v8w0z5"}},
        {"functionCall": {"name": "get_news", "args": {}}},  # no id Gemini did not mint
    ]
    assert [p["functionResponse"].get("id") for p in results] == ["7k2m9xq1", "p3v8w0z5", None]


def test_a_store_miss_gets_the_placeholder_on_gemini3_and_nothing_elsewhere() -> None:
    message = {"role": "assistant", "content": None, "tool_calls": [tool_call("call_gone", "f", "{}")]}
    parts = _translate(_history(message), {})["contents"][1]["parts"]
    assert parts == [{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": DUMMY_SIGNATURE}]
    parts = _translate(_history(message), {}, model="gemini-2.5-flash")["contents"][1]["parts"]
    assert parts == [{"functionCall": {"name": "f", "args": {}}}]


def test_ids_of_the_previous_version_still_bring_their_signature() -> None:
    old_id = encode_tool_call_id("native-1", "T2xk")
    message = {"role": "assistant", "content": None, "tool_calls": [tool_call(old_id, "f", "{}")]}
    history = [*_history(message)[:2], {"role": "tool", "tool_call_id": "native-1", "content": "ok"}]
    out = _translate(history, {})
    assert out["contents"][1]["parts"] == [
        {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "T2xk"}
    ]
    assert out["contents"][2]["parts"][0]["functionResponse"] == {"name": "f", "response": {"content": "ok"}}


def test_store_entries_win_and_foreign_or_broken_ones_are_ignored() -> None:
    calls = [tool_call("call_a", "f", "{}"), tool_call("call_b", "g", "{}"), tool_call("call_c", "h", "{}")]
    message = {"role": "assistant", "content": None, "tool_calls": calls}
    saved = {
        "call_a": SavedCall("U2ln", None).pack(),
        "call_b": "not json",
        "call_c": json.dumps({"v": 99, "sig": "X"}),  # a format this version does not know
    }
    parts = _translate(_history(message), saved)["contents"][1]["parts"]
    assert [p.get("thoughtSignature") for p in parts] == ["U2ln", None, None]
    assert all("id" not in p["functionCall"] for p in parts)


def test_with_saved_calls_copies_only_what_it_changes() -> None:
    plain = {"role": "assistant", "content": None, "tool_calls": [tool_call("call_x", "f", "{}")]}
    request = {"messages": [{"role": "user", "content": "q"}, plain]}
    assert with_saved_calls(request, {}) is request
    assert with_saved_calls(request, {"call_other": SavedCall("S").pack()})["messages"][1] is plain
    changed = with_saved_calls(request, {"call_x": SavedCall("S").pack()})
    assert changed["messages"][0] is request["messages"][0] and changed["messages"][1] is not plain
    assert plain == {"role": "assistant", "content": None, "tool_calls": [tool_call("call_x", "f", "{}")]}


SIGNED_STREAM = gemini_sse(
    {"candidates": [cand([{"text": "Let me look."}])], "responseId": "r"},
    {
        "candidates": [
            cand(
                [
                    {
                        "functionCall": {"id": "g-1", "name": "a", "args": {"q": 1}},
                        "thoughtSignature": "U0lH",
                    },
                    {"functionCall": {"name": "b", "args": {}}},
                ]
            )
        ]
    },
    {"candidates": [cand([{"functionCall": {"id": "g-3", "name": "c", "args": {}}}])]},
    {"candidates": [cand([{"text": ""}], "STOP")]},
)


def _stream(raw: bytes, cuts: list[int]) -> tuple[list[Any], dict[str, str]]:
    """(chunks, kept); every piece's output hands out only ids already kept."""
    kept: dict[str, str] = {}
    t = GeminiStreamTranslator(model="m", id_factory=counter_ids(), kept=kept)
    out: list[bytes] = []
    for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True):
        piece = t.feed(raw[a:b])
        handed_out = {
            tc["id"] for c in parse_sse(piece) for tc in c["choices"][0]["delta"].get("tool_calls", [])
        }
        assert handed_out & {"call_1", "call_3"} <= set(kept)  # kept before the client sees the id
        out += piece
    out += t.finish()
    return parse_sse(out), kept


def test_stream_keeps_each_call_before_handing_out_its_id() -> None:
    chunks, kept = _stream(SIGNED_STREAM, [])
    calls = [tc for c in chunks[:-2] for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert [(c["index"], c["id"]) for c in calls] == [(0, "call_1"), (1, "call_2"), (2, "call_3")]
    assert {k: SavedCall.unpack(v) for k, v in kept.items()} == {
        "call_1": SavedCall("U0lH", "g-1"),
        "call_3": SavedCall(None, "g-3"),
    }


@given(st.lists(st.integers(min_value=0, max_value=len(SIGNED_STREAM)), max_size=8))
@FAST
def test_any_split_of_the_stream_keeps_the_same_calls(cuts: list[int]) -> None:
    whole_chunks, whole_kept = _stream(SIGNED_STREAM, [])
    chunks, kept = _stream(SIGNED_STREAM, sorted(cuts))
    assert kept == whole_kept
    strip = [{k: v for k, v in c.items() if k != "created"} if isinstance(c, dict) else c for c in chunks]
    assert strip == [
        {k: v for k, v in c.items() if k != "created"} if isinstance(c, dict) else c for c in whole_chunks
    ]


@given(
    signature=st.one_of(st.none(), st.text(min_size=1, max_size=200)),
    native=st.one_of(st.none(), st.text(min_size=1, max_size=80)),
)
@FAST
def test_saved_call_packs_any_value_exactly(signature: str | None, native: str | None) -> None:
    assert SavedCall.unpack(SavedCall(signature, native).pack()) == SavedCall(signature, native)


@given(st.one_of(st.text(max_size=50), st.integers(), st.none()))
@FAST
def test_saved_call_unpack_never_raises(value: Any) -> None:
    entry = SavedCall.unpack(value)
    assert entry is None or isinstance(entry, SavedCall)

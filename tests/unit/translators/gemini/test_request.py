"""translators/gemini/request.py: whole requests, dropped parameters, alternation."""

from __future__ import annotations

import itertools
import json
import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fakes.fake_gemini import validate_request
from tests.unit.translators.gemini.support import FAST, tool_call, translate
from translators.gemini import decode_tool_call_id, encode_tool_call_id


def test_unknown_parameters_are_dropped_with_a_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="translators.gemini"):
        out = translate(
            [{"role": "user", "content": "x"}], logit_bias={"1": 2}, user="u", parallel_tool_calls=False
        )
    assert set(out) == {"contents"}
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "'logit_bias'" in logged and "'user'" in logged and "'parallel_tool_calls'" in logged


def test_a_rich_request_passes_googles_checks() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "sys"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "hi"},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [tool_call("c1", "f", '{"q": [1, {"a": null}]}')],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
    ]
    before = json.dumps(messages)
    out = translate(
        messages,
        model="gemini-3-pro-preview",
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "f",
                    "parameters": {"type": "object", "properties": {"q": {"type": "array"}}},
                },
            }
        ],
        tool_choice="auto",
        temperature=1,
        reasoning_effort="high",
        response_format={"type": "json_object"},
    )
    validate_request(out)
    json.dumps(out)  # plain JSON all the way down
    assert json.dumps(messages) == before  # the client's request is not modified


# ---------------------------------------------------------------------------------------------------
# property: any valid OpenAI conversation translates into strictly alternating Gemini turns
# ---------------------------------------------------------------------------------------------------

_texts = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)
_content = st.one_of(
    _texts,
    st.lists(st.builds(lambda t: {"type": "text", "text": t}, _texts), max_size=3),
)
_user_content = st.one_of(
    _content,
    st.lists(
        st.one_of(
            st.builds(lambda t: {"type": "text", "text": t}, _texts),
            st.just({"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}),
            st.just({"type": "image_url", "image_url": {"url": "https://example.test/cat.jpg"}}),
            st.just({"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "mp3"}}),
        ),
        min_size=1,
        max_size=3,
    ),
)
_args = st.dictionaries(
    st.text(min_size=1, max_size=5), st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=3
)


@st.composite
def conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    ids = itertools.count()
    messages: list[dict[str, Any]] = []
    for kind in draw(
        st.lists(
            st.sampled_from(["system", "developer", "user", "assistant", "tools"]), min_size=1, max_size=8
        )
    ):
        if kind in ("system", "developer"):
            messages.append({"role": kind, "content": draw(_content)})
        elif kind == "user":
            messages.append({"role": "user", "content": draw(_user_content)})
        elif kind == "assistant":
            messages.append({"role": "assistant", "content": draw(_content)})
        else:
            calls = [
                tool_call(
                    encode_tool_call_id(
                        f"call_{next(ids)}", draw(st.one_of(st.none(), st.text(min_size=1, max_size=8)))
                    ),
                    draw(st.sampled_from(["f", "g", "lookup"])),
                    draw(st.one_of(st.just(""), _args.map(json.dumps))),
                )
                for _ in range(draw(st.integers(1, 3)))
            ]
            text = draw(st.one_of(st.none(), _texts))
            messages.append({"role": "assistant", "content": text, "tool_calls": calls})
            for call in draw(st.permutations(calls)):
                result = draw(st.one_of(_texts, _args.map(json.dumps)))
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
    return messages


@given(conversations(), st.sampled_from(["gemini-2.5-flash", "gemini-3-pro-preview"]))
@FAST
def test_any_valid_conversation_translates_to_alternating_turns(
    messages: list[dict[str, Any]], model: str
) -> None:
    out = translate(messages, model=model)
    roles = [c["role"] for c in out["contents"]]
    assert all(a != b for a, b in itertools.pairwise(roles)), roles
    assert set(roles) <= {"user", "model"}
    validate_request(out)  # non-empty parts, no empty texts, known fields only
    calls = {tc["id"]: tc["function"]["name"] for m in messages for tc in m.get("tool_calls") or []}
    responses = [
        p["functionResponse"]["name"] for c in out["contents"] for p in c["parts"] if "functionResponse" in p
    ]
    assert responses == [calls[m["tool_call_id"]] for m in messages if m["role"] == "tool"]
    sent = [p for c in out["contents"] for p in c["parts"] if "functionCall" in p]
    assert len(sent) == len(calls)
    for part, (call_id, name) in zip(sent, calls.items(), strict=True):
        assert part["functionCall"]["name"] == name
        signature = decode_tool_call_id(call_id)[1]
        if signature:
            assert part["thoughtSignature"] == signature

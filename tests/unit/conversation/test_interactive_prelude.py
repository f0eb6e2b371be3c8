"""Interactive mode's prelude never corrupts an answer: none where the client parses the answer (the banner
waits), and a prelude shown earlier is taken out of the history before it goes upstream again."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from addons.conversation.prelude import MARK, exact_answer_wanted, mark, without_preludes
from addons.conversation.prepare import Prepared, prepare
from addons.routing.catalog import ModelCatalog
from addons.security.redaction import Redactor
from addons.stores.base import RuntimeConfig, Session

PREFIX = "!/"
BANNER = "llm-intercept 0.1.0 · session t\ntype !/help for commands"
SCHEMA = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]


def _catalog() -> ModelCatalog:
    c = ModelCatalog(("openrouter",))
    c.set_models("openrouter", ["openai/gpt-4o"])
    return c


async def _status(s: Session) -> str:
    return "STATUS"


def prep(
    messages: list[dict[str, Any]], session: Session, interactive: bool = True, **fields: Any
) -> Prepared:
    request = {"model": "openai/gpt-4o", "messages": messages, **fields}
    rt = RuntimeConfig("openrouter", interactive, True)
    return asyncio.run(prepare(
        request, json.dumps(request).encode(), session, rt, _catalog(), {"openrouter": 1}, PREFIX,
        Redactor([]), lambda s, rt: BANNER, _status,
    ))  # fmt: skip


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def shown(prelude: str, answer: str) -> str:
    """An answer as the client got it: prelude, blank line, the model's text (see failover.prepend_text
    and stream.relay_stream)."""
    return prelude + "\n\n" + answer


# -- what is shown, and when ---------------------------------------------------------------------------


def test_plain_reply_gets_the_marked_banner() -> None:
    out = prep(user("hi"), Session("t"))
    assert out.prelude == f"{BANNER}\n{MARK}" and out.session.greeted


@pytest.mark.parametrize(
    "fields",
    [
        {"response_format": SCHEMA},
        {"response_format": {"type": "json_object"}},
        {"tools": TOOLS, "tool_choice": "required"},
        {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "f"}}},
        {"tools": TOOLS, "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "required"}}},
    ],
)
def test_parsed_answers_get_nothing_and_the_banner_waits(fields: dict[str, Any]) -> None:
    out = prep(user("hi"), Session("t"), **fields)
    assert out.prelude == "" and not out.session.greeted and "greeted" not in out.changes.session
    later = prep(user("plain"), out.session)
    assert later.prelude.startswith(BANNER) and later.session.greeted


def test_commands_apply_but_confirm_nothing_on_a_parsed_answer() -> None:
    out = prep(user("!/set(project=p) go"), Session("t"), response_format=SCHEMA)
    assert out.session.project == "p" and out.request["messages"][-1]["content"] == "go"
    assert out.prelude == "" and not out.session.greeted
    plain = prep(user("!/set(project=q) go"), Session("t"))
    assert plain.prelude == f"{BANNER}\nproject set to q (this session)\n{MARK}"


@pytest.mark.parametrize(
    ("fields", "wanted"),
    [
        ({}, False),
        ({"response_format": {"type": "text"}}, False),
        ({"tool_choice": "auto"}, False),
        ({"tool_choice": "none"}, False),
        ({"tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}}, False),
        ({"tool_choice": {"type": "custom", "custom": {"name": "g"}}}, True),
        ({"function_call": {"name": "f"}}, True),
        ({"function_call": "auto"}, False),
    ],
)
def test_exact_answer_wanted(fields: dict[str, Any], wanted: bool) -> None:
    assert exact_answer_wanted({"messages": [], **fields}) is wanted


def test_mark_folds_blank_lines_so_the_prelude_ends_at_the_first_one() -> None:
    assert mark("a\n\n\nb\n \nc\n") == f"a\nb\nc\n{MARK}"
    assert mark("") == "" and mark("\n\n") == ""


# -- what goes upstream again ---------------------------------------------------------------------------


def test_the_banner_of_an_earlier_answer_is_not_sent_again() -> None:
    first = prep(user("hi"), Session("t"))
    history = [*user("hi"), {"role": "assistant", "content": shown(first.prelude, "Hello!")}, *user("more")]
    out = prep(history, first.session, interactive=False)
    assert out.request["messages"][1] == {"role": "assistant", "content": "Hello!"}
    assert out.request["messages"][0] == history[0] and out.request["messages"][2] == history[2]
    assert history[1]["content"].startswith(BANNER)  # the client's request is left as it was


def test_tool_call_turns_get_their_null_content_back() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    msg = {"role": "assistant", "content": shown(mark("note"), ""), "tool_calls": [call]}
    assert without_preludes({"messages": [msg]})["messages"][0] == {**msg, "content": None}


def test_content_parts_lose_the_prelude_of_their_first_text() -> None:
    parts = [{"type": "text", "text": shown(mark("note"), "a")}, {"type": "text", "text": "b"}]
    assert without_preludes({"messages": [{"role": "assistant", "content": parts}]})["messages"][0][
        "content"
    ] == [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    only = [{"type": "text", "text": shown(mark("note"), "")}, {"type": "text", "text": "b"}]
    assert without_preludes({"messages": [{"role": "assistant", "content": only}]})["messages"][0][
        "content"
    ] == [{"type": "text", "text": "b"}]


def test_a_trimmed_prelude_only_answer_is_stripped_whole() -> None:
    msg = {"role": "assistant", "content": mark("note")}
    assert without_preludes({"messages": [msg]})["messages"][0]["content"] == ""


@pytest.mark.parametrize(
    "content",
    [
        f"an answer\n\nquoting {MARK}\n\nlater",  # the mark, but not ending the first paragraph
        f"{MARK} is how it ends\n\nx",
        f"a\n{MARK}x\n\nb",
        None,
        [{"type": "image_url", "image_url": {"url": "data:,"}}],
    ],
)
def test_anything_else_is_left_alone(content: Any) -> None:
    request = {"messages": [{"role": "assistant", "content": content}]}
    assert without_preludes(request) is request


def test_user_messages_are_never_touched() -> None:
    request = {"messages": [{"role": "user", "content": shown(mark("note"), "a")}]}
    assert without_preludes(request) is request


lines = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
# Texts made of the pieces the rule looks at, so the mark and blank lines turn up everywhere.
tricky = st.lists(st.sampled_from([MARK, "\n", "\n\n", "\n \n", "a", " "]), max_size=12).map("".join)
texts = st.one_of(lines, tricky)


@given(prelude=texts, answer=texts)
@settings(max_examples=300, deadline=None)
def test_any_prelude_comes_off_and_gives_back_the_exact_answer(prelude: str, answer: str) -> None:
    text = mark(prelude)
    assume(text)
    assert "\n\n" not in text and text.endswith("\n" + MARK)
    msg = {"role": "assistant", "content": shown(text, answer)}
    assert without_preludes({"messages": [msg]})["messages"][0]["content"] == answer


@given(answer=texts)
@settings(max_examples=300, deadline=None)
def test_answers_without_a_prelude_are_the_same_object(answer: str) -> None:
    assume(not answer.partition("\n\n")[0].endswith("\n" + MARK))
    request = {"messages": [{"role": "assistant", "content": answer}]}
    assert without_preludes(request) is request

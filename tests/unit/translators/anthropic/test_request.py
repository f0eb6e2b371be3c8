"""translators/anthropic/request.py (+ messages, parts, tools): Messages request -> internal chat request."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.translators.anthropic.support import FAST, claude_code_body
from translators.anthropic import encode_signature, parse, to_chat
from translators.openai.types import TOO_DEEP, RequestError

PDF = "JVBERi0xLjQK"
PNG = "iVBORw0KGgo="


def chat_of(messages: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    return to_chat({"model": "m", "max_tokens": 100, "messages": messages, **params}).chat


def user(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def assistant(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": list(blocks)}


def text(t: str, **kw: Any) -> dict[str, Any]:
    return {"type": "text", "text": t, **kw}


def tool_result(call_id: str, content: Any = None, **kw: Any) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id, **kw}
    if content is not None:
        block["content"] = content
    return block


# -- the whole request -------------------------------------------------------------------------------


def test_claude_code_request_translates_and_lists_what_it_ignores() -> None:
    req = to_chat(claude_code_body())
    chat = req.chat
    assert req.model == chat["model"] == "claude-opus-4-5"
    assert req.stream is True and req.stop_sequences == []
    assert req.ignored == ["context_management", "thinking.display", "output_config.effort"]
    system = chat["messages"][0]
    assert system["role"] == "system"
    ephemeral = {"type": "ephemeral"}
    assert [p.get("cache_control") for p in system["content"]] == [None, ephemeral, ephemeral]
    assert [p["text"] for p in system["content"]][1] == "You are Claude Code."
    assert chat["messages"][1] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
            {"type": "text", "text": "say hi", "cache_control": {"type": "ephemeral"}},
        ],
    }
    assert len(chat["tools"]) == 8
    assert all(set(t["function"]) == {"name", "description", "parameters"} for t in chat["tools"])
    assert chat["tools"][-1]["function"]["name"] == "DeferredToolPlaceholder"
    assert chat["reasoning"] == {"max_tokens": 31999}
    assert json.loads(chat["user"])["session_id"] == "s"
    assert chat["max_tokens"] == 32000
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}
    assert "context_management" not in chat and "thinking" not in chat and "metadata" not in chat


def test_parse_decodes_bytes_like_to_chat() -> None:
    body = claude_code_body()
    assert parse(json.dumps(body).encode()) == to_chat(body)


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"", "empty"),
        (b"  \n", "empty"),
        (b"{nope", "not valid JSON"),
        (b"\xff\xfe{", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, TOO_DEEP),
    ],
)
def test_parse_refuses_unusable_bodies(raw: bytes, needle: str) -> None:
    with pytest.raises(RequestError) as exc:
        parse(raw)
    assert needle in str(exc.value) and exc.value.status == 400


def test_plain_request_without_stream_has_no_stream_fields() -> None:
    req = to_chat({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
    assert req.chat == {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    assert req.stream is False and req.ignored == []


def test_sampling_and_stop_sequences_map_to_chat_names() -> None:
    req = to_chat(
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.2,
            "top_p": 0.9,
            "top_k": 40,
            "stop_sequences": ["END", "", "###"],
            "system": "Be brief.",
            "service_tier": "auto",
        }
    )
    chat = req.chat
    assert (chat["temperature"], chat["top_p"], chat["top_k"]) == (0.2, 0.9, 40)
    assert chat["stop"] == ["END", "###"] and req.stop_sequences == ["END", "###"]
    assert chat["messages"][0] == {"role": "system", "content": "Be brief."}
    assert req.ignored == ["service_tier"]


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"model": None}, "model"),
        ({"model": ""}, "model"),
        ({"model": 5}, "model"),
        ({"model": "x" * 513}, "model"),
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"messages": None}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": ["hi"]}, "messages.0"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": [{"text": "x"}]}]}, "messages.0.content.0.type"),
        ({"messages": [user({"type": "video"})]}, "messages.0.content.0.type"),
        ({"messages": [user(text("a"), {"type": "text", "text": 3})]}, "messages.0.content.1.text"),
        (
            {"messages": [user({"type": "tool_use", "id": "a", "name": "b", "input": {}})]},
            "messages.0.content.0.type",
        ),
        ({"messages": [assistant({"type": "image", "source": {}})]}, "messages.0.content.0.type"),
        (
            {"messages": [assistant({"type": "tool_use", "id": "a", "name": "b", "input": [1]})]},
            "messages.0.content.0.input",
        ),
        ({"messages": [user(tool_result(None))]}, "messages.0.content.0.tool_use_id"),  # type: ignore[arg-type]
        (
            {"messages": [user({"type": "image", "source": {"type": "file", "file_id": "f"}})]},
            "messages.0.content.0.source",
        ),
        (
            {"messages": [user({"type": "image", "source": {"type": "base64", "data": "x"}})]},
            "messages.0.content.0.source.media_type",
        ),
        ({"messages": [user({"type": "image"})]}, "messages.0.content.0.source"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_k": 1.5}, "top_k"),
        ({"stream": "yes"}, "stream"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"system": [{"type": "image", "source": {}}]}, "system.0.type"),
        ({"system": 5}, "system"),
        ({"tools": {}}, "tools"),
        ({"tools": [{"name": "f"}]}, "tools.0.input_schema"),
        ({"tools": [{"input_schema": {}}]}, "tools.0.name"),
        ({"tools": [{"name": "f", "input_schema": {}}], "tool_choice": {"type": "tool"}}, "tool_choice.name"),
        (
            {"tools": [{"name": "f", "input_schema": {}}], "tool_choice": {"type": "maybe"}},
            "tool_choice.type",
        ),
        ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
        ({"thinking": {"type": "enabled", "budget_tokens": "lots"}}, "thinking.budget_tokens"),
        ({"thinking": "on"}, "thinking"),
        ({"output_config": "fast"}, "output_config"),
    ],
)
def test_unusable_fields_are_400_naming_the_field(change: dict[str, Any], param: str) -> None:
    body = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], **change}
    with pytest.raises(RequestError) as exc:
        to_chat(body)
    assert exc.value.param == param and exc.value.status == 400
    assert str(exc.value).startswith(param + ":")


def test_to_chat_refuses_a_body_that_is_not_an_object() -> None:
    with pytest.raises(RequestError, match="JSON object"):
        to_chat([])


# -- content blocks --------------------------------------------------------------------------------


def test_user_media_blocks_become_image_and_file_parts() -> None:
    chat = chat_of(
        [
            user(
                text("look"),
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
                {
                    "type": "document",
                    "title": "spec.pdf",
                    "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                    "citations": {"enabled": True},
                },
                {"type": "document", "source": {"type": "url", "url": "https://example.com/b.pdf"}},
                {
                    "type": "document",
                    "title": "Notes",
                    "source": {"type": "text", "media_type": "text/plain", "data": "n1"},
                },
                {"type": "document", "source": {"type": "content", "content": [text("c1"), text("c2")]}},
                {"type": "document", "source": {"type": "content", "content": "c3"}},
            )
        ]
    )
    assert chat["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
                {
                    "type": "file",
                    "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "spec.pdf"},
                },
                {"type": "file", "file": {"file_data": "https://example.com/b.pdf"}},
                {"type": "text", "text": "Notes\n\nn1"},
                {"type": "text", "text": "c1"},
                {"type": "text", "text": "c2"},
                {"type": "text", "text": "c3"},
            ],
        }
    ]


def test_search_results_and_compaction_become_text() -> None:
    search = {
        "type": "search_result",
        "title": "Doc",
        "source": "https://example.com/doc",
        "content": [text("first"), text("second")],
    }
    chat = chat_of(
        [
            user(
                search,
                {"type": "compaction", "content": "Summary so far."},
                {"type": "compaction", "content": None},
            ),
            assistant({"type": "compaction", "content": "Earlier work."}, text("Next.")),
        ]
    )
    assert chat["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Doc\nhttps://example.com/doc\n\nfirst\n\nsecond"},
                {"type": "text", "text": "Summary so far."},
            ],
        },
        {"role": "assistant", "content": "Earlier work.\n\nNext."},
    ]


def test_assistant_turn_becomes_one_message_with_reasoning_and_tool_calls() -> None:
    chat = chat_of(
        [
            {"role": "user", "content": "go"},
            assistant(
                {"type": "thinking", "thinking": "Plan A.", "signature": encode_signature("SIG1")},
                text("Looking."),
                {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "ä.txt"}},
                {"type": "thinking", "thinking": "Plan B.", "signature": encode_signature("SIG2")},
                {"type": "tool_use", "id": "call_2__ts__QUJD", "name": "Bash", "input": {}},
            ),
        ]
    )
    msg = chat["messages"][1]
    assert msg == {
        "role": "assistant",
        "content": "Looking.",
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "Read", "arguments": '{"path":"ä.txt"}'},
            },
            {"id": "call_2__ts__QUJD", "type": "function", "function": {"name": "Bash", "arguments": "{}"}},
        ],
        "reasoning_content": "Plan A.\n\nPlan B.",
        "reasoning_signature": "SIG1",
    }
    assert json.loads(msg["tool_calls"][0]["function"]["arguments"]) == {"path": "ä.txt"}


@pytest.mark.parametrize(
    ("blocks", "expected"),
    [
        # a real Anthropic signature is not ours: the thought text stays, the signature goes
        (
            [{"type": "thinking", "thinking": "t", "signature": "EqQBCkgIARABGAIiQL"}, text("a")],
            {"reasoning_content": "t"},
        ),
        (
            [{"type": "thinking", "thinking": "", "signature": encode_signature("S")}, text("a")],
            {"reasoning_signature": "S"},
        ),
        (
            [{"type": "redacted_thinking", "data": encode_signature("R")}, text("a")],
            {"reasoning_signature": "R"},
        ),
        ([{"type": "redacted_thinking", "data": "foreign-blob"}, text("a")], {}),
        ([{"type": "thinking", "thinking": "t", "signature": ""}, text("a")], {"reasoning_content": "t"}),
    ],
)
def test_thinking_signatures_round_trip_only_when_ours(
    blocks: list[dict[str, Any]], expected: dict[str, Any]
) -> None:
    msg = chat_of([{"role": "user", "content": "q"}, assistant(*blocks)])["messages"][1]
    assert msg == {"role": "assistant", "content": "a", **expected}


def test_assistant_with_only_reasoning_gets_empty_content_and_string_content_passes() -> None:
    chat = chat_of(
        [
            {"role": "user", "content": "q"},
            assistant({"type": "thinking", "thinking": "hmm", "signature": encode_signature("S")}),
            {"role": "assistant", "content": "prefill"},
        ]
    )
    assert chat["messages"][1:] == [
        {"role": "assistant", "content": "", "reasoning_content": "hmm", "reasoning_signature": "S"},
        {"role": "assistant", "content": "prefill"},
    ]


def test_tool_results_come_first_then_returned_media_then_the_rest_of_the_turn() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    chat = chat_of(
        [
            {"role": "user", "content": "q"},
            assistant(
                {"type": "tool_use", "id": "a", "name": "Shot", "input": {}},
                {"type": "tool_use", "id": "b", "name": "Bash", "input": {"c": 1}},
            ),
            user(
                text("first, some text"),
                tool_result("a", [text("screen:"), image, text("done")]),
                tool_result("b", "exit 1", is_error=True),
                tool_result("unknown-id", "kept anyway"),
                text("and more"),
            ),
        ]
    )
    assert chat["messages"][2:] == [
        {"role": "tool", "tool_call_id": "a", "content": "screen:\ndone"},
        {"role": "tool", "tool_call_id": "b", "content": "Error: exit 1"},
        {"role": "tool", "tool_call_id": "unknown-id", "content": "kept anyway"},
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}],
        },
        {
            "role": "user",
            "content": [{"type": "text", "text": "first, some text"}, {"type": "text", "text": "and more"}],
        },
    ]


@pytest.mark.parametrize(
    ("block", "content"),
    [
        (tool_result("x"), ""),
        (tool_result("x", is_error=True), "Error"),
        (tool_result("x", [], is_error=True), "Error"),
        (tool_result("x", "", is_error=False), ""),
        (tool_result("x", [{"type": "tool_reference", "tool_name": "WebFetch"}]), "Tool loaded: WebFetch"),
        (
            tool_result(
                "x", [{"type": "search_result", "title": "T", "source": "s", "content": [text("c")]}]
            ),
            "T\ns\n\nc",
        ),
    ],
)
def test_tool_result_content_forms(block: dict[str, Any], content: str) -> None:
    chat = chat_of([user(block)])
    assert chat["messages"] == [{"role": "tool", "tool_call_id": "x", "content": content}]


def test_tool_result_documents_follow_as_a_user_message() -> None:
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}}
    chat = chat_of([user(tool_result("x", [pdf]))])
    assert chat["messages"] == [
        {"role": "tool", "tool_call_id": "x", "content": ""},
        {
            "role": "user",
            "content": [{"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}"}}],
        },
    ]


def test_server_tool_blocks_are_dropped_and_named() -> None:
    req = to_chat(
        {
            "model": "m",
            "max_tokens": 10,
            "messages": [
                {"role": "user", "content": "search"},
                assistant(
                    {"type": "server_tool_use", "id": "s1", "name": "web_search", "input": {"query": "q"}},
                    {"type": "web_search_tool_result", "tool_use_id": "s1", "content": []},
                    text("Found it."),
                ),
                assistant({"type": "server_tool_use", "id": "s2", "name": "web_search", "input": {}}),
                user({"type": "web_fetch_tool_result", "tool_use_id": "s3", "content": {}}, text("thanks")),
            ],
        }
    )
    assert req.chat["messages"] == [
        {"role": "user", "content": "search"},
        {"role": "assistant", "content": "Found it."},
        {"role": "user", "content": [{"type": "text", "text": "thanks"}]},
    ]
    assert req.ignored == [
        "block:server_tool_use",
        "block:web_search_tool_result",
        "block:web_fetch_tool_result",
    ]


# -- tools -----------------------------------------------------------------------------------------


def test_tools_map_to_functions_and_server_tools_are_skipped() -> None:
    schema = {"type": "object", "properties": {}}
    req = to_chat(
        {
            "model": "m",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [
                {
                    "name": "a",
                    "description": "A.",
                    "input_schema": schema,
                    "cache_control": {"type": "ephemeral"},
                },
                {"type": "custom", "name": "b", "input_schema": schema, "strict": True},
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
                {"type": "bash_20250124", "name": "bash"},
                {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
            ],
        }
    )
    assert req.chat["tools"] == [
        {"type": "function", "function": {"name": "a", "parameters": schema, "description": "A."}},
        {"type": "function", "function": {"name": "b", "parameters": schema, "strict": True}},
    ]
    assert req.ignored == ["tool:web_search_20250305", "tool:bash_20250124", "tool:text_editor_20250728"]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        ({"type": "none"}, {"tool_choice": "none"}),
        ({"type": "tool", "name": "f"}, {"tool_choice": {"type": "function", "function": {"name": "f"}}}),
        (
            {"type": "auto", "disable_parallel_tool_use": True},
            {"tool_choice": "auto", "parallel_tool_calls": False},
        ),
        ({"type": "any", "disable_parallel_tool_use": False}, {"tool_choice": "required"}),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: dict[str, Any]) -> None:
    chat = chat_of(
        [{"role": "user", "content": "hi"}], tools=[{"name": "f", "input_schema": {}}], tool_choice=choice
    )
    assert {k: chat[k] for k in ("tool_choice", "parallel_tool_calls") if k in chat} == expected


def test_tool_choice_without_usable_tools_is_ignored() -> None:
    req = to_chat(
        {
            "model": "m",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            "tool_choice": {"type": "any"},
        }
    )
    assert "tools" not in req.chat and "tool_choice" not in req.chat
    assert req.ignored == ["tool:web_search_20250305", "tool_choice"]


# -- reasoning and output_config -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "reasoning", "ignored"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, {"max_tokens": 2048}, []),
        ({"thinking": {"type": "adaptive"}}, {"effort": "high"}, []),
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}}, {"effort": "low"}, []),
        (
            {"thinking": {"type": "adaptive", "display": "summarized"}},
            {"effort": "high"},
            ["thinking.display"],
        ),
        ({"thinking": {"type": "disabled"}}, {"enabled": False}, []),
        (
            {"thinking": {"type": "disabled"}, "output_config": {"effort": "low"}},
            {"enabled": False},
            ["output_config.effort"],
        ),
        ({"output_config": {"effort": "medium"}}, {"effort": "medium"}, []),
        ({"output_config": {"effort": "xhigh"}}, {"effort": "high"}, []),
        ({"output_config": {"effort": "max"}}, {"effort": "high"}, []),
        ({"output_config": {"effort": "ludicrous"}}, None, ["output_config.effort"]),
        ({"thinking": {"type": "between_tools"}}, None, ["thinking"]),
        ({}, None, []),
    ],
)
def test_reasoning_controls(
    params: dict[str, Any], reasoning: dict[str, Any] | None, ignored: list[str]
) -> None:
    req = to_chat(
        {"model": "m", "max_tokens": 4096, "messages": [{"role": "user", "content": "hi"}], **params}
    )
    assert req.chat.get("reasoning") == reasoning
    assert req.ignored == ignored


def test_output_format_becomes_a_json_schema_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    req = to_chat(
        {
            "model": "m",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}],
            "output_config": {"format": {"type": "json_schema", "schema": schema}, "verbosity": "low"},
        }
    )
    assert req.chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": True},
    }
    assert req.ignored == ["output_config.verbosity"]


def test_metadata_user_id_only_when_a_string() -> None:
    base = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    assert to_chat({**base, "metadata": {"user_id": "u-1"}}).chat["user"] == "u-1"
    assert "user" not in to_chat({**base, "metadata": {"user_id": 7}}).chat
    assert "user" not in to_chat({**base, "metadata": "u"}).chat


# -- any input: a translation or a 400, never a crash ----------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=10,
)
_TEXT = st.text(max_size=6)
_SOURCE = st.fixed_dictionaries(
    {"type": st.sampled_from(["base64", "url", "text", "content", "file"])},
    optional={
        "media_type": _TEXT,
        "data": _TEXT,
        "url": _TEXT,
        "content": _TEXT | st.lists(st.just({"type": "text", "text": "t"})),
    },
)
_LEAF_BLOCK = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["text", "image", "document", "search_result", "tool_reference", "compaction", "video"]
        )
    },
    optional={
        "text": _TEXT,
        "source": _SOURCE | _JSON,
        "title": _TEXT,
        "tool_name": _TEXT,
        "content": _TEXT | st.none() | st.lists(st.just({"type": "text", "text": "t"}), max_size=2),
        "cache_control": st.just({"type": "ephemeral"}),
    },
)
_TURN_BLOCK = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            [
                "tool_use",
                "tool_result",
                "thinking",
                "redacted_thinking",
                "server_tool_use",
                "web_search_tool_result",
            ]
        )
    },
    optional={
        "id": _TEXT,
        "name": _TEXT,
        "input": st.dictionaries(_TEXT, _JSON, max_size=2) | _JSON,
        "tool_use_id": _TEXT,
        "content": _TEXT | st.lists(_LEAF_BLOCK, max_size=3) | _JSON,
        "is_error": st.booleans(),
        "thinking": _TEXT,
        "signature": _TEXT | st.just("llmi1.SIG"),
        "data": _TEXT,
    },
)
_MESSAGE = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user"] * 4 + ["assistant"] * 4 + ["system"]),
        "content": st.one_of(_TEXT, *[st.lists(_LEAF_BLOCK | _TURN_BLOCK, max_size=3)] * 4, _JSON),
    }
)
_EXTRAS = st.fixed_dictionaries(
    {},
    optional={
        "system": _TEXT | st.lists(_LEAF_BLOCK, max_size=2),
        "tools": st.lists(
            st.fixed_dictionaries({"name": _TEXT}, optional={"input_schema": st.just({}), "type": _TEXT}),
            max_size=3,
        ),
        "tool_choice": st.fixed_dictionaries(
            {"type": st.sampled_from(["auto", "any", "tool", "none", "x"])}, optional={"name": _TEXT}
        ),
        "thinking": st.fixed_dictionaries(
            {"type": st.sampled_from(["enabled", "adaptive", "disabled", "x"])},
            optional={"budget_tokens": st.integers(-1, 5000), "display": _TEXT},
        ),
        "output_config": st.fixed_dictionaries(
            {}, optional={"effort": _TEXT | st.just("low"), "format": _JSON}
        ),
        "metadata": st.fixed_dictionaries({}, optional={"user_id": _TEXT | _JSON}),
        "stop_sequences": st.lists(_TEXT, max_size=2),
    },
)


@given(messages=st.lists(_MESSAGE, min_size=1, max_size=4), extra=_EXTRAS)
@FAST
def test_any_body_translates_or_is_a_400(messages: Any, extra: dict[str, Any]) -> None:
    try:
        req = to_chat({"model": "m", "max_tokens": 10, "messages": messages, **extra})
    except RequestError as e:
        assert e.status == 400 and e.param
        return
    json.dumps(req.chat)  # plain JSON all the way down
    assert all(m["role"] in ("system", "user", "assistant", "tool") for m in req.chat["messages"])
    assert all(isinstance(m["content"], str) for m in req.chat["messages"] if m["role"] == "tool")

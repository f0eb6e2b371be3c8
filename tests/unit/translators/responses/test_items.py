"""Input items -> chat messages: every item type, content part, and the turns they form."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.translators.responses.support import SEALER, check_item, request
from translators.openai.types import RequestError

NS_TOOLS = [
    {"type": "function", "name": "exec_command"},
    {"type": "custom", "name": "apply_patch"},
    {
        "type": "namespace",
        "name": "multi_agent_v1",
        "description": "",
        "tools": [{"type": "function", "name": "spawn_agent"}],
    },
]


def messages(items: list[Any], **body: Any) -> list[dict[str, Any]]:
    return request({"input": items, **body}).chat["messages"]


def test_message_roles_and_content_parts() -> None:
    out = messages(
        [
            {"role": "system", "content": "sys"},
            {"type": "message", "role": "developer", "content": "dev"},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "look"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
                    {"type": "input_image", "image_url": "https://example.com/a.png"},
                    {
                        "type": "input_file",
                        "filename": "a.pdf",
                        "file_data": "data:application/pdf;base64,JVBE",
                    },
                    {"type": "input_file", "filename": "notes.txt", "file_data": "aGk="},
                    {"type": "input_file", "file_url": "https://example.com/b.pdf"},
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "output_text", "text": "A"}, {"type": "refusal", "refusal": "B"}],
            },
        ]
    )
    assert out == [
        {"role": "system", "content": "sys"},
        {"role": "system", "content": "dev"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                {
                    "type": "file",
                    "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"},
                },
                {
                    "type": "file",
                    "file": {"file_data": "data:text/plain;base64,aGk=", "filename": "notes.txt"},
                },
                {"type": "file", "file": {"file_data": "https://example.com/b.pdf"}},
            ],
        },
        {"role": "assistant", "content": "AB"},
    ]


def test_a_turn_of_reasoning_text_and_calls_becomes_one_assistant_message() -> None:
    token = SEALER.seal({"signature": "sig-1"})
    out = messages(
        [
            {"role": "user", "content": "go"},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "plan"}],
                "encrypted_content": token,
            },
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "On it."}]},
            {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": '{"cmd":"ls"}'},
            {
                "type": "function_call",
                "call_id": "c2",
                "name": "spawn_agent",
                "namespace": "multi_agent_v1",
                "arguments": "{}",
            },
            {"type": "custom_tool_call", "call_id": "c3", "name": "apply_patch", "input": "*** Begin Patch"},
            {"type": "function_call_output", "call_id": "c1", "output": "a.txt"},
            {
                "type": "function_call_output",
                "call_id": "c2",
                "output": [{"type": "input_text", "text": "ok"}],
            },
            {"type": "custom_tool_call_output", "call_id": "c3", "output": "Done!"},
        ],
        tools=NS_TOOLS,
    )
    assert out == [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": "On it.",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "exec_command", "arguments": '{"cmd":"ls"}'},
                },
                {"id": "c2", "type": "function", "function": {"name": "spawn_agent", "arguments": "{}"}},
                {
                    "id": "c3",
                    "type": "function",
                    "function": {"name": "apply_patch", "arguments": '{"input":"*** Begin Patch"}'},
                },
            ],
            "reasoning_content": "plan",
            "reasoning_signature": "sig-1",
        },
        {"role": "tool", "tool_call_id": "c1", "content": "a.txt"},
        {"role": "tool", "tool_call_id": "c2", "content": "ok"},
        {"role": "tool", "tool_call_id": "c3", "content": "Done!"},
    ]


def test_a_signature_only_reasoning_item_still_reaches_the_turn() -> None:
    token = SEALER.seal({"signature": "sig-2"})
    out = messages(
        [
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "reasoning", "summary": [], "encrypted_content": token},
            {"type": "function_call_output", "call_id": "c1", "output": "x"},
        ]
    )
    assert out[0]["reasoning_signature"] == "sig-2" and "reasoning_content" not in out[0]


def test_reasoning_alone_has_no_turn_to_join_and_is_left_out() -> None:
    reasoning = {"type": "reasoning", "summary": [{"type": "summary_text", "text": "hm"}]}
    assert messages([reasoning, {"role": "user", "content": "hi"}]) == [{"role": "user", "content": "hi"}]


def test_images_a_tool_returned_follow_the_run_of_tool_results() -> None:
    image = {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}
    out = messages(
        [
            {"type": "function_call", "call_id": "c1", "name": "view_image", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "view_image", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": [image]},
            {
                "type": "function_call_output",
                "call_id": "c2",
                "output": [{"type": "input_text", "text": "t"}, image],
            },
            {"role": "user", "content": "what is it?"},
        ]
    )
    assert [m["role"] for m in out] == ["assistant", "tool", "tool", "user", "user"]
    assert out[1]["content"] == "(The tool returned the images that follow.)" and out[2]["content"] == "t"
    media = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    assert out[3] == {"role": "user", "content": [media, media]}


def test_the_sealed_signature_comes_back_unsealed() -> None:
    token = SEALER.seal({"signature": "opaque/sig=="})
    item = {"type": "reasoning", "id": "rs_9", "summary": [], "encrypted_content": token}
    call = {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}
    assert messages([item, call])[0]["reasoning_signature"] == "opaque/sig=="


def test_a_tampered_token_is_a_400_naming_the_item() -> None:
    token = SEALER.seal({"signature": "s"})
    forged = token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB")
    item = {"type": "reasoning", "id": "rs_7", "summary": [], "encrypted_content": forged}
    with pytest.raises(RequestError) as err:
        messages([{"role": "user", "content": "x"}, item])
    assert err.value.param == "input[1].encrypted_content"
    assert str(err.value).startswith("input[1] (reasoning item rs_7): reasoning item: encrypted_content")


def test_unseal_may_decline_a_token() -> None:
    from translators.responses import to_chat

    item = {"type": "reasoning", "summary": [], "encrypted_content": "foreign"}
    call = {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}
    req = to_chat({"model": "m", "input": [item, call]}, None, lambda _t: None)
    assert "reasoning_signature" not in req.chat["messages"][0]


@pytest.mark.parametrize(
    ("item", "message", "param"),
    [
        ({"type": "item_reference", "id": "msg_1"}, "item_reference is not supported", "input[0]"),
        (
            {"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]},
            "file_id",
            "input[0].content[0].file_id",
        ),
        (
            {"role": "user", "content": [{"type": "input_file", "file_id": "file_1"}]},
            "file_id",
            "input[0].content[0].file_id",
        ),
        (
            {"role": "user", "content": [{"type": "input_file"}]},
            "file_data or file_url",
            "input[0].content[0]",
        ),
        (
            {"role": "user", "content": [{"type": "input_image"}]},
            "image_url",
            "input[0].content[0].image_url",
        ),
        ({"role": "user", "content": [{"type": "input_audio"}]}, "not supported", "input[0].content[0].type"),
        ({"role": "user", "content": 5}, "string or an array", "input[0].content"),
        ({"role": "critic", "content": "x"}, "role 'critic'", "input[0].role"),
        (
            {"role": "system", "content": [{"type": "input_image", "image_url": "https://x"}]},
            "text only",
            "input[0].content",
        ),
        ({"type": "function_call", "name": "f"}, "call_id and name", "input[0]"),
        ({"type": "function_call_output", "output": "x"}, "call_id", "input[0].call_id"),
        ("just a string", "must be an object", "input[0]"),
    ],
)
def test_unusable_items_are_a_400_naming_the_item(item: Any, message: str, param: str) -> None:
    with pytest.raises(RequestError, match=message) as err:
        messages([item])
    assert err.value.param == param


def test_hosted_tool_traces_are_skipped_and_listed() -> None:
    req = request(
        {
            "input": [
                {
                    "type": "web_search_call",
                    "id": "ws_1",
                    "status": "completed",
                    "action": {"type": "search", "query": "q"},
                },
                {"role": "user", "content": "x"},
            ]
        }
    )
    assert req.chat["messages"] == [{"role": "user", "content": "x"}]
    assert req.ignored == ["input[0] (web_search_call)"]


def test_input_items_keep_or_get_ids_and_validate() -> None:
    items = [
        {"role": "user", "content": "hi"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "yo"}]},
        {"type": "reasoning", "id": "rs_keep", "summary": []},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "p"},
        {"type": "custom_tool_call_output", "call_id": "c2", "output": "done"},
    ]
    listed = request({"input": items}).input_items
    assert [i["id"] for i in listed] == ["msg_1", "msg_2", "rs_keep", "fc_3", "fco_4", "ctc_5", "ctco_6"]
    for item in listed:
        check_item(item)

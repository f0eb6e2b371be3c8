"""translators/gemini.py: OpenAI <-> Gemini requests, responses, streams and errors; plus the fake server."""

from __future__ import annotations

import base64
import itertools
import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes.fake_gemini import (
    DUMMY_SIGNATURE,
    FakeGemini,
    GeminiRejection,
    Reply,
    dropped,
    rate_limit_body,
    rate_limited,
    raw_stream,
    server_error,
    validate_request,
)
from translators import gemini as g
from translators.gemini import (
    GeminiFormatError,
    GeminiStreamTranslator,
    TranslationError,
    clean_schema,
    decode_tool_call_id,
    encode_tool_call_id,
    from_gemini_response,
    gemini_error_to_openai,
    gemini_path,
    parse_model_page,
    retry_info,
    to_gemini_request,
)

MODEL = "gemini-2.5-flash"
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------


def translate(messages: list[dict[str, Any]], model: str = MODEL, **params: Any) -> dict[str, Any]:
    return to_gemini_request({"model": "client-name", "messages": messages, **params}, model=model)


def counter_ids() -> Callable[[str], str]:
    n = itertools.count(1)
    return lambda prefix: f"{prefix}{next(n)}"


def gemini_sse(*events: dict[str, Any] | bytes, eol: bytes = b"\r\n") -> bytes:
    """Gemini's framing; a bytes item is a raw line (e.g. a comment) followed by the blank line."""
    out = b""
    for ev in events:
        line = ev if isinstance(ev, bytes) else b"data: " + json.dumps(ev, ensure_ascii=False).encode()
        out += line + eol + eol
    return out


def parse_sse(chunks: list[bytes]) -> list[Any]:
    """OpenAI SSE bytes -> list of parsed JSON payloads ("[DONE]" kept as the string)."""
    text = b"".join(chunks).decode()
    assert text.endswith("\n\n") or not text
    out = []
    for block in text.split("\n\n")[:-1]:
        assert block.startswith("data: "), block
        payload = block[len("data: ") :]
        out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def run_stream(raw: bytes, *, splits: list[int] | None = None, **kw: Any) -> list[Any]:
    t = GeminiStreamTranslator(model="client-model", id_factory=counter_ids(), **kw)
    bounds = [0, *(splits or []), len(raw)]
    out: list[bytes] = []
    for a, b in itertools.pairwise(bounds):
        out += t.feed(raw[a:b])
    out += t.finish()
    return parse_sse(out)


def cand(parts: list[dict[str, Any]], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    c: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": index}
    if finish:
        c["finishReason"] = finish
    return c


def tool_call(cid: str, name: str, args: str) -> dict[str, Any]:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}


# ---------------------------------------------------------------------------------------------------
# requests: messages
# ---------------------------------------------------------------------------------------------------


def test_system_and_developer_messages_become_one_system_instruction() -> None:
    out = translate(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
        ]
    )
    assert out["systemInstruction"] == {"parts": [{"text": "Be brief.\n\nUse French."}]}
    assert out["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]


def test_roles_map_and_consecutive_turns_merge() -> None:
    out = translate(
        [
            {"role": "user", "content": "a"},
            {"role": "user", "content": [{"type": "text", "text": "b"}, {"type": "text", "text": "c"}]},
            {"role": "assistant", "content": "d"},
            {"role": "assistant", "content": [{"type": "text", "text": "e"}]},
            {"role": "user", "content": "f"},
        ]
    )
    assert out["contents"] == [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}, {"text": "c"}]},
        {"role": "model", "parts": [{"text": "d"}, {"text": "e"}]},
        {"role": "user", "parts": [{"text": "f"}]},
    ]


def test_empty_turns_are_dropped_without_breaking_alternation() -> None:
    out = translate(
        [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": [{"type": "text", "text": ""}]},
            {"role": "user", "content": "b"},
        ]
    )
    assert out["contents"] == [{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]}]


def test_system_only_conversation_gets_a_minimal_user_turn() -> None:
    out = translate([{"role": "system", "content": "You are a poet."}])
    assert out["contents"] == [{"role": "user", "parts": [{"text": "."}]}]
    validate_request(out)


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([], "messages"),
        ([{"role": "wizard", "content": "x"}], "messages[0].role"),
        ([{"role": "user", "content": 42}], "messages[0].content"),
        (
            [{"role": "user", "content": [{"type": "video_url", "video_url": "x"}]}],
            "messages[0].content[0].type",
        ),
        (
            [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            "messages[0].content[0]",
        ),
    ],
)
def test_bad_messages_raise_translation_error_with_param(messages: list[Any], param: str) -> None:
    with pytest.raises(TranslationError) as exc:
        translate(messages)
    assert exc.value.param == param
    assert isinstance(exc.value, ValueError)


def test_image_data_url_becomes_inline_data() -> None:
    out = translate(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0K\nGgo=", "detail": "low"},
                    },
                    {"type": "image_url", "image_url": {"url": "data:text/plain,hello%20world"}},
                ],
            }
        ]
    )
    parts = out["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
    # A non-base64 data URL is percent-decoded and re-encoded: Gemini only takes base64.
    assert parts[2] == {
        "inlineData": {"mimeType": "text/plain", "data": base64.b64encode(b"hello world").decode()}
    }


@pytest.mark.parametrize(
    ("url", "mime"),
    [
        ("https://example.test/cat.PNG", "image/png"),
        ("https://example.test/a/b/photo.jpeg?size=large#frag", "image/jpeg"),
        ("http://example.test/x.webp", "image/webp"),
        ("https://example.test/doc.pdf", "application/pdf"),
        ("gs://bucket/clip.mp4", "video/mp4"),
    ],
)
def test_remote_image_url_becomes_file_data_with_guessed_mime(url: str, mime: str) -> None:
    out = translate([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}])
    assert out["contents"][0]["parts"] == [{"fileData": {"mimeType": mime, "fileUri": url}}]


def test_remote_image_url_without_known_extension_is_a_clear_error() -> None:
    with pytest.raises(TranslationError) as exc:
        translate(
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x.test/img?id=7"}}],
                }
            ]
        )
    assert "media type" in exc.value.message and "data: URL" in exc.value.message
    assert exc.value.param == "messages[0].content[0].image_url"


@pytest.mark.parametrize("url", ["ftp://x.test/a.png", "data:;base64,AAAA", "data:image/png;base64"])
def test_unusable_image_urls_raise(url: str) -> None:
    with pytest.raises(TranslationError):
        translate([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}])


def test_input_audio_and_file_parts_become_inline_data() -> None:
    out = translate(
        [
            {
                "role": "user",
                "content": [
                    {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                    {
                        "type": "file",
                        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
                    },
                    {"type": "file", "file": {"file_data": "JVBERi0=", "filename": "b.pdf"}},
                ],
            }
        ]
    )
    assert out["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
    ]
    with pytest.raises(TranslationError, match="file ids"):
        translate([{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}])


# ---------------------------------------------------------------------------------------------------
# requests: tools
# ---------------------------------------------------------------------------------------------------


def test_assistant_tool_calls_and_tool_results_round_trip() -> None:
    out = translate(
        [
            {"role": "user", "content": "weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    tool_call("call_a", "get_weather", '{"city": "Paris"}'),
                    tool_call("call_b", "get_weather", '{"city": "Rome"}'),
                    tool_call("call_c", "now", ""),
                ],
            },
            {"role": "tool", "tool_call_id": "call_b", "content": '{"temp": 21}'},
            {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_c", "content": [{"type": "text", "text": "[1, 2]"}]},
            {"role": "user", "content": "thanks"},
        ]
    )
    user, model, results = out["contents"]
    assert user["role"] == "user"
    assert model == {
        "role": "model",
        "parts": [
            {"text": "Checking."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
            {"functionCall": {"name": "now", "args": {}}},
        ],
    }
    # All results of one step travel in one user turn, the follow-up text merged after them.
    assert results == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
            {"functionResponse": {"name": "get_weather", "response": {"content": "sunny"}}},
            {"functionResponse": {"name": "now", "response": {"content": "[1, 2]"}}},
            {"text": "thanks"},
        ],
    }
    validate_request(out)


def test_tool_result_without_matching_call_is_an_error() -> None:
    with pytest.raises(TranslationError) as exc:
        translate(
            [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "call_zz", "content": "1"}]
        )
    assert exc.value.param == "messages[1].tool_call_id"
    assert "call_zz" in exc.value.message


def test_tool_result_may_name_its_function_and_legacy_function_role_works() -> None:
    out = translate(
        [
            {"role": "user", "content": "x"},
            {"role": "tool", "tool_call_id": "unknown", "name": "lookup", "content": "1"},
            {"role": "function", "name": "legacy", "content": '{"a": 1}'},
        ]
    )
    assert out["contents"][0]["parts"][1:] == [
        {"functionResponse": {"name": "lookup", "response": {"content": "1"}}},
        {"functionResponse": {"name": "legacy", "response": {"a": 1}}},
    ]


@pytest.mark.parametrize(
    ("arguments", "fragment"), [("{not json", "not valid JSON"), ("[1, 2]", "JSON object")]
)
def test_bad_tool_call_arguments_raise(arguments: str, fragment: str) -> None:
    with pytest.raises(TranslationError) as exc:
        translate([{"role": "assistant", "tool_calls": [tool_call("c1", "f", arguments)]}])
    assert fragment in exc.value.message
    assert exc.value.param == "messages[0].tool_calls[0].function.arguments"


def test_tool_result_images_travel_beside_the_function_response() -> None:
    out = translate(
        [
            {"role": "assistant", "tool_calls": [tool_call("c1", "shot", "{}")]},
            {
                "role": "tool",
                "tool_call_id": "c1",
                "content": [
                    {"type": "text", "text": "here"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
                ],
            },
        ]
    )
    assert out["contents"][1]["parts"] == [
        {"functionResponse": {"name": "shot", "response": {"content": "here"}}},
        {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/"}},
    ]


def test_function_declarations_and_empty_parameters() -> None:
    out = translate(
        [{"role": "user", "content": "x"}],
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather now",
                    "strict": True,
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string", "description": "City"}},
                        "required": ["city"],
                        "additionalProperties": False,
                    },
                },
            },
            {
                "type": "function",
                "function": {"name": "now", "parameters": {"type": "object", "properties": {}}},
            },
            {"type": "function", "function": {"name": "ping"}},
        ],
    )
    assert out["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather now",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string", "description": "City"}},
                        "required": ["city"],
                    },
                },
                {"name": "now"},  # an OBJECT with no properties is a 400 at Google
                {"name": "ping"},
            ]
        }
    ]
    validate_request(out)


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("none", {"mode": "NONE"}),
        ("auto", {"mode": "AUTO"}),
        ("required", {"mode": "ANY"}),
        ({"type": "function", "function": {"name": "f"}}, {"mode": "ANY", "allowedFunctionNames": ["f"]}),
        (
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "required",
                    "tools": [{"type": "function", "function": {"name": "g"}}],
                },
            },
            {"mode": "ANY", "allowedFunctionNames": ["g"]},
        ),
    ],
)
def test_tool_choice_maps_to_function_calling_config(choice: Any, config: dict[str, Any]) -> None:
    tools = [{"type": "function", "function": {"name": n}} for n in ("f", "g")]
    out = translate([{"role": "user", "content": "x"}], tools=tools, tool_choice=choice)
    assert out["toolConfig"] == {"functionCallingConfig": config}


def test_tool_choice_errors_and_no_tools() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    with pytest.raises(TranslationError) as exc:
        translate([{"role": "user", "content": "x"}], tools=tools, tool_choice="sometimes")
    assert exc.value.param == "tool_choice"
    with pytest.raises(TranslationError) as exc:
        translate([{"role": "user", "content": "x"}], tools=[{"type": "custom", "custom": {"name": "x"}}])
    assert exc.value.param == "tools[0].type"
    out = translate([{"role": "user", "content": "x"}], tool_choice="auto")
    assert "toolConfig" not in out and "tools" not in out


# ---------------------------------------------------------------------------------------------------
# thought signatures
# ---------------------------------------------------------------------------------------------------


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
    message = from_gemini_response(gemini_answer, model="m")["choices"][0]["message"]
    # The client only ever sees and returns plain tool call ids.
    history = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": message["tool_calls"]},
        *({"role": "tool", "tool_call_id": tc["id"], "content": "ok"} for tc in message["tool_calls"]),
    ]
    out = translate(json.loads(json.dumps(history)), model="gemini-3-pro-preview")
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
    assert parts[0]["thoughtSignature"] == DUMMY_SIGNATURE == g.DUMMY_THOUGHT_SIGNATURE
    assert "thoughtSignature" not in parts[1]  # only the first call of a step is validated
    assert all("thoughtSignature" not in p for p in translate(history)["contents"][1]["parts"])


# ---------------------------------------------------------------------------------------------------
# schema cleaning
# ---------------------------------------------------------------------------------------------------


def test_schema_refs_defs_and_recursion_are_inlined() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "Point": {
                "type": "object",
                "title": "Point",
                "properties": {"x": {"type": "number"}},
                "required": ["x"],
            },
            "Node": {
                "type": "object",
                "properties": {"child": {"$ref": "#/$defs/Node"}, "v": {"type": "integer"}},
            },
        },
        "definitions": {"Tag": {"type": "string", "enum": ["a", "b"]}},
        "properties": {
            "p": {"$ref": "#/$defs/Point", "description": "where"},
            "tree": {"$ref": "#/$defs/Node"},
            "tag": {"$ref": "#/definitions/Tag"},
        },
    }
    assert clean_schema(schema) == {
        "type": "object",
        "properties": {
            "p": {
                "type": "object",
                "description": "where",
                "properties": {"x": {"type": "number"}},
                "required": ["x"],
            },
            "tree": {
                "type": "object",
                "properties": {"child": {"type": "object"}, "v": {"type": "integer"}},
            },
            "tag": {"type": "string", "enum": ["a", "b"]},
        },
    }


def test_schema_nullable_unions_enums_and_dropped_keywords() -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "maybe": {"anyOf": [{"type": "string", "format": "email"}, {"type": "null"}], "default": None},
            "either": {"oneOf": [{"type": "string"}, {"type": "integer", "exclusiveMinimum": 0}]},
            "typelist": {"type": ["integer", "null"], "minimum": 1, "maximum": 9, "examples": [3]},
            "multi": {"type": ["string", "boolean"]},
            "level": {"type": "integer", "enum": [1, 2, 3]},
            "inferred": {"enum": [1, 2]},
            "color": {"type": "string", "enum": ["red", "", None]},
            "when": {"type": "string", "format": "date-time", "pattern": "^2", "minLength": 1},
            "const": {"const": "fixed"},
            "list": {"type": "array", "minItems": 1, "uniqueItems": True},
            "tuple": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}]},
            "anything": {},
        },
        "required": ["maybe", "ghost"],
    }
    out = clean_schema(schema)
    props = out["properties"]
    assert props["maybe"] == {"type": "string", "nullable": True}  # "email" is not a format Gemini takes
    assert props["either"] == {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    assert props["typelist"] == {"type": "integer", "minimum": 1, "maximum": 9, "nullable": True}
    assert props["multi"] == {"anyOf": [{"type": "string"}, {"type": "boolean"}]}
    assert props["level"] == {"type": "integer"}
    assert props["inferred"] == {"type": "integer"}
    assert props["color"] == {"type": "string", "enum": ["red"], "nullable": True}
    assert props["when"] == {"type": "string", "format": "date-time", "pattern": "^2", "minLength": 1}
    assert props["const"] == {"type": "string", "enum": ["fixed"]}
    assert props["list"] == {"type": "array", "minItems": 1, "items": {"type": "string"}}
    assert props["tuple"] == {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "number"}]}}
    assert props["anything"] == {"type": "string"}
    assert out["required"] == ["maybe"]
    assert "additionalProperties" not in out and "propertyOrdering" not in out
    validate_request(
        {
            "contents": [{"role": "user", "parts": [{"text": "x"}]}],
            "tools": [{"functionDeclarations": [{"name": "f", "parameters": out}]}],
        }
    )


def test_schema_all_of_merges_and_external_refs_fail() -> None:
    out = clean_schema(
        {
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"properties": {"b": {"type": "boolean"}}, "required": ["b"]},
            ]
        }
    )
    assert out == {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "boolean"}},
        "required": ["a", "b"],
    }
    with pytest.raises(TranslationError, match="local"):
        clean_schema({"$ref": "https://example.test/schema.json"})
    with pytest.raises(TranslationError, match="points nowhere"):
        clean_schema({"properties": {"a": {"$ref": "#/$defs/Missing"}}})


# ---------------------------------------------------------------------------------------------------
# requests: parameters
# ---------------------------------------------------------------------------------------------------


def test_sampling_parameters_map_to_generation_config() -> None:
    out = translate(
        [{"role": "user", "content": "x"}],
        temperature=0.3,
        top_p=0.9,
        top_k=40,
        max_tokens=100,
        max_completion_tokens=200,
        stop="END",
        n=2,
        seed=7,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        stream=True,
        stream_options={"include_usage": True},
    )
    assert out["generationConfig"] == {
        "temperature": 0.3,
        "topP": 0.9,
        "topK": 40,
        "candidateCount": 2,
        "seed": 7,
        "presencePenalty": 0.5,
        "frequencyPenalty": -0.5,
        "maxOutputTokens": 200,  # max_completion_tokens wins over the deprecated max_tokens
        "stopSequences": ["END"],
    }
    assert translate([{"role": "user", "content": "x"}], stop=["a", "", "b"], max_tokens=5)[
        "generationConfig"
    ] == {
        "maxOutputTokens": 5,
        "stopSequences": ["a", "b"],
    }
    assert "generationConfig" not in translate(
        [{"role": "user", "content": "x"}], temperature=None, stop=None
    )


@pytest.mark.parametrize(
    ("key", "value"), [("temperature", "hot"), ("max_tokens", 1.5), ("n", True), ("stop", [1])]
)
def test_parameters_of_the_wrong_type_raise(key: str, value: Any) -> None:
    with pytest.raises(TranslationError) as exc:
        translate([{"role": "user", "content": "x"}], **{key: value})
    assert exc.value.param == key


def test_unknown_parameters_are_dropped_with_a_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="translators.gemini"):
        out = translate(
            [{"role": "user", "content": "x"}], logit_bias={"1": 2}, user="u", parallel_tool_calls=False
        )
    assert set(out) == {"contents"}
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "'logit_bias'" in logged and "'user'" in logged and "'parallel_tool_calls'" in logged


def test_response_format_json_object_and_json_schema() -> None:
    out = translate([{"role": "user", "content": "x"}], response_format={"type": "json_object"})
    assert out["generationConfig"] == {"responseMimeType": "application/json"}
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    out = translate(
        [{"role": "user", "content": "x"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "strict": True, "schema": schema},
        },
    )
    assert out["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            "required": ["name", "age"],
            "propertyOrdering": ["name", "age"],  # Gemini would otherwise emit keys alphabetically
        },
    }
    validate_request(out)
    assert "generationConfig" not in translate(
        [{"role": "user", "content": "x"}], response_format={"type": "text"}
    )
    with pytest.raises(TranslationError):
        translate([{"role": "user", "content": "x"}], response_format={"type": "yaml"})


@pytest.mark.parametrize(
    ("model", "effort", "thinking"),
    [
        ("gemini-2.5-flash", "none", {"thinkingBudget": 0, "includeThoughts": False}),
        ("gemini-2.5-flash", "minimal", {"thinkingBudget": 128, "includeThoughts": True}),
        ("gemini-2.5-flash", "low", {"thinkingBudget": 1024, "includeThoughts": True}),
        ("gemini-2.5-flash", "medium", {"thinkingBudget": 8192, "includeThoughts": True}),
        ("models/gemini-2.5-flash", "high", {"thinkingBudget": 24576, "includeThoughts": True}),
        ("gemini-2.5-pro", "none", {"thinkingBudget": 128, "includeThoughts": False}),
        ("gemini-2.5-flash-lite", "minimal", {"thinkingBudget": 512, "includeThoughts": True}),
        ("gemini-3-pro-preview", "low", {"thinkingLevel": "low", "includeThoughts": True}),
        ("gemini-3-pro-preview", "medium", {"thinkingLevel": "high", "includeThoughts": True}),
        ("gemini-3-pro-preview", "HIGH", {"thinkingLevel": "high", "includeThoughts": True}),
        ("gemini-3-flash-preview", "minimal", {"thinkingLevel": "minimal", "includeThoughts": True}),
        ("gemini-3-flash-preview", "medium", {"thinkingLevel": "medium", "includeThoughts": True}),
        ("gemini-2.0-flash", "high", None),
    ],
)
def test_reasoning_effort_maps_to_one_thinking_control(model: str, effort: str, thinking: Any) -> None:
    out = translate([{"role": "user", "content": "x"}], model=model, reasoning_effort=effort)
    got = out.get("generationConfig", {}).get("thinkingConfig")
    assert got == thinking
    assert not (got and "thinkingBudget" in got and "thinkingLevel" in got)
    validate_request(out)


def test_unknown_reasoning_effort_raises() -> None:
    with pytest.raises(TranslationError) as exc:
        translate([{"role": "user", "content": "x"}], reasoning_effort="maximum")
    assert exc.value.param == "reasoning_effort"


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


# ---------------------------------------------------------------------------------------------------
# responses
# ---------------------------------------------------------------------------------------------------


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
    usage = g.usage_from_metadata(meta)
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (prompt, completion)


def test_tool_call_response_prefers_native_ids_and_encodes_signatures() -> None:
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
    out = from_gemini_response(data, model="m", id_factory=counter_ids())
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {
            "id": encode_tool_call_id("native-1", "c2ln"),
            "type": "function",
            "function": {"name": "a", "arguments": '{"x": "é"}'},
        },
        {"id": "call_1", "type": "function", "function": {"name": "b", "arguments": "{}"}},
    ]
    assert out["id"] == "chatcmpl-2"


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


# ---------------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------------


def test_rate_limit_with_fractional_retry_delay() -> None:
    body = json.dumps(rate_limit_body("29.723877525s")).encode()
    status, err, retry_after = gemini_error_to_openai(429, body)
    assert status == 429
    assert retry_after == pytest.approx(29.723877525)
    assert err["error"]["type"] == "rate_limit_error"
    assert err["error"]["code"] == "RESOURCE_EXHAUSTED"
    assert err["error"]["param"] is None
    assert "exceeded your current quota" in err["error"]["message"]
    assert retry_info(body) == (pytest.approx(29.723877525), False)


def test_per_day_quota_is_recognised() -> None:
    body = json.dumps(rate_limit_body("45.83s", per_day=True)).encode()
    assert retry_info(body) == (pytest.approx(45.83), True)
    _, err, _ = gemini_error_to_openai(429, body)
    assert "per-day quota" in err["error"]["message"]


@pytest.mark.parametrize(
    ("text", "seconds"), [("Please retry in 47.88s.", 47.88), ("Please retry in 379.612354ms.", 0.379612354)]
)
def test_retry_delay_falls_back_to_the_message(text: str, seconds: float) -> None:
    body = json.dumps(
        {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": f"Quota. {text}"}}
    ).encode()
    assert retry_info(body) == (pytest.approx(seconds), False)
    assert gemini_error_to_openai(429, body)[2] == pytest.approx(seconds)


def test_invalid_key_is_reported_clearly_and_never_echoed() -> None:
    key = "AIzaSyA1234567890abcdefghijklmnopqrstuv"
    body = json.dumps(
        {
            "error": {
                "code": 400,
                "status": "INVALID_ARGUMENT",
                "message": f"API key not valid. Please pass a valid API key. (key={key})",
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
                ],
            }
        }
    ).encode()
    status, err, retry = gemini_error_to_openai(400, body)
    assert status == 400 and retry is None
    assert err["error"]["code"] == "API_KEY_INVALID"
    assert "API key configured in the proxy" in err["error"]["message"]
    assert key not in json.dumps(err) and key[4:20] not in json.dumps(err)


@pytest.mark.parametrize(
    ("status", "google_status", "openai_type"),
    [
        (400, "INVALID_ARGUMENT", "invalid_request_error"),
        (400, "FAILED_PRECONDITION", "invalid_request_error"),
        (403, "PERMISSION_DENIED", "permission_error"),
        (404, "NOT_FOUND", "not_found_error"),
        (500, "INTERNAL", "api_error"),
        (503, "UNAVAILABLE", "api_error"),
        (504, "DEADLINE_EXCEEDED", "api_error"),
    ],
)
def test_status_errors_keep_status_message_and_code(
    status: int, google_status: str, openai_type: str
) -> None:
    body = json.dumps(
        {"error": {"code": status, "message": f"upstream says {status}", "status": google_status}}
    ).encode()
    out_status, err, retry = gemini_error_to_openai(status, body)
    assert (out_status, retry) == (status, None)
    assert err == {
        "error": {
            "message": f"upstream says {status}",
            "type": openai_type,
            "param": None,
            "code": google_status,
        }
    }


def test_garbage_and_wrapped_error_bodies() -> None:
    status, err, retry = gemini_error_to_openai(502, b"<html>Bad Gateway</html>")
    assert status == 502 and retry is None
    assert "HTTP 502" in err["error"]["message"] and "<html>Bad Gateway</html>" in err["error"]["message"]
    status, err, _ = gemini_error_to_openai(503, b"")
    assert status == 503 and "empty body" in err["error"]["message"]
    status, err, _ = gemini_error_to_openai(500, b"x" * 5000)
    assert len(err["error"]["message"]) < 300
    wrapped = json.dumps(
        [{"error": {"code": 404, "message": "models/x is not found", "status": "NOT_FOUND"}}]
    ).encode()
    assert gemini_error_to_openai(404, wrapped)[1]["error"]["code"] == "NOT_FOUND"
    assert retry_info(b"\xff\xfe not json") == (None, False)


# ---------------------------------------------------------------------------------------------------
# models and paths
# ---------------------------------------------------------------------------------------------------


def test_parse_model_page() -> None:
    page = {
        "models": [
            {
                "name": "models/gemini-2.5-flash",
                "supportedGenerationMethods": ["generateContent", "countTokens"],
            },
            {"name": "models/text-embedding-004", "supportedGenerationMethods": ["embedContent"]},
            {"name": "models/no-methods"},
            "junk",
        ],
        "nextPageToken": "tok",
    }
    assert parse_model_page(page) == (["gemini-2.5-flash"], "tok")
    assert parse_model_page({"models": []}) == ([], None)
    assert parse_model_page({}) == ([], None)


def test_gemini_path_quotes_model_names() -> None:
    assert gemini_path("gemini-2.5-flash", False) == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert (
        gemini_path("models/gemini-2.5-flash", True)
        == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    assert gemini_path("tunedModels/my-tune", False) == "/v1beta/tunedModels/my-tune:generateContent"
    evil = gemini_path("../x/y:streamGenerateContent?key=1#", False)
    assert evil == "/v1beta/models/..%2Fx%2Fy%3AstreamGenerateContent%3Fkey%3D1%23:generateContent"
    with pytest.raises(TranslationError):
        gemini_path("  ", True)


# ---------------------------------------------------------------------------------------------------
# streaming
# ---------------------------------------------------------------------------------------------------

TEXT_STREAM = gemini_sse(
    {"candidates": [cand([{"text": "Hel"}])], "responseId": "r1", "modelVersion": "gemini-2.5-flash"},
    {"candidates": [cand([{"text": "lo, wörld ✓ 😀"}])], "responseId": "r1"},
    {
        "candidates": [cand([{"text": "!"}], "STOP")],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 3, "totalTokenCount": 7},
        "responseId": "r1",
    },
)


def test_text_stream_translates_event_by_event() -> None:
    t = GeminiStreamTranslator(model="alias")
    events = TEXT_STREAM.split(b"\r\n\r\n")
    first = parse_sse(t.feed(events[0] + b"\r\n\r\n"))
    assert [c["choices"][0]["delta"] for c in first] == [{"role": "assistant", "content": "Hel"}]
    out = first + parse_sse(t.feed(b"\r\n\r\n".join(events[1:]))) + parse_sse(t.finish())
    chunks = out[:-1]
    assert out[-1] == "[DONE]"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Hello, wörld ✓ 😀!"
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert {c["id"] for c in chunks} == {"chatcmpl-r1"}
    assert len({c["created"] for c in chunks}) == 1
    assert all(
        c["object"] == "chat.completion.chunk" and c["model"] == "alias" and "usage" not in c for c in chunks
    )


def test_stream_usage_chunk_comes_last_before_done() -> None:
    out = run_stream(TEXT_STREAM, include_usage=True)
    assert out[-1] == "[DONE]"
    usage = out[-2]
    assert (
        usage["choices"] == []
        and usage["usage"]["total_tokens"] == 7
        and usage["usage"]["prompt_tokens"] == 4
    )
    assert all(c["usage"] is None for c in out[:-2])


def test_stream_tool_calls_are_indexed_across_events_and_finish_as_tool_calls() -> None:
    raw = gemini_sse(
        {"candidates": [cand([{"text": "Let me look."}])]},
        {
            "candidates": [
                cand([{"functionCall": {"name": "a", "args": {"q": 1}}, "thoughtSignature": "U0lH"}])
            ]
        },
        {
            "candidates": [
                cand(
                    [
                        {"functionCall": {"name": "b", "args": {}}},
                        {"functionCall": {"name": "c", "args": {"z": [1]}}},
                    ]
                )
            ]
        },
        {
            "candidates": [cand([{"text": ""}], "STOP")],
            "usageMetadata": {"promptTokenCount": 1, "totalTokenCount": 1},
        },
    )
    out = run_stream(raw)
    assert out[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Let me look."}
    calls = [tc for c in out[1:-2] for tc in c["choices"][0]["delta"]["tool_calls"]]
    assert calls == [
        {
            "index": 0,
            "id": encode_tool_call_id("call_2", "U0lH"),
            "type": "function",
            "function": {"name": "a", "arguments": '{"q": 1}'},
        },
        {"index": 1, "id": "call_3", "type": "function", "function": {"name": "b", "arguments": "{}"}},
        {
            "index": 2,
            "id": "call_4",
            "type": "function",
            "function": {"name": "c", "arguments": '{"z": [1]}'},
        },
    ]
    assert out[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert out[-1] == "[DONE]"


def test_stream_first_chunk_may_be_a_tool_call_or_a_thought() -> None:
    out = run_stream(
        gemini_sse({"candidates": [cand([{"functionCall": {"name": "f", "args": {}}}], "STOP")]})
    )
    delta = out[0]["choices"][0]["delta"]
    assert delta["role"] == "assistant" and delta["content"] is None and delta["tool_calls"][0]["index"] == 0
    out = run_stream(
        gemini_sse({"candidates": [cand([{"text": "hmm", "thought": True}, {"text": "ok"}], "MAX_TOKENS")]})
    )
    assert out[0]["choices"][0]["delta"] == {"role": "assistant", "content": "ok", "reasoning_content": "hmm"}
    assert out[1]["choices"][0]["finish_reason"] == "length"


def test_stream_with_only_a_finish_event_still_has_a_role() -> None:
    out = run_stream(gemini_sse({"candidates": [cand([{"text": ""}], "STOP")], "responseId": "z"}))
    assert out == [
        {
            "id": "chatcmpl-z",
            "object": "chat.completion.chunk",
            "created": out[0]["created"],
            "model": "client-model",
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": ""},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
        },
        "[DONE]",
    ]


def test_stream_blocked_prompt() -> None:
    out = run_stream(
        gemini_sse({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}), include_usage=True
    )
    assert out[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    assert out[0]["choices"][0]["finish_reason"] == "content_filter"
    assert out[1]["choices"] == [] and out[2] == "[DONE]"


def test_stream_several_candidates_keep_their_index() -> None:
    raw = gemini_sse(
        {"candidates": [cand([{"text": "a"}], index=0), cand([{"text": "b"}], index=1)]},
        {
            "candidates": [
                cand([{"text": "!"}], "STOP", index=0),
                cand([{"functionCall": {"name": "f"}}], "STOP", index=1),
            ]
        },
    )
    out = run_stream(raw)
    finals = {
        c["choices"][0]["index"]: c["choices"][0]["finish_reason"]
        for c in out[:-1]
        if c["choices"][0]["finish_reason"]
    }
    assert finals == {0: "stop", 1: "tool_calls"}
    roles = [c["choices"][0]["index"] for c in out[:-1] if c["choices"][0]["delta"].get("role")]
    assert roles == [0, 1]


def test_mid_stream_error_event_ends_the_stream() -> None:
    t = GeminiStreamTranslator(model="m", include_usage=True)
    raw = gemini_sse(
        {"candidates": [cand([{"text": "partial"}])]},
        {
            "error": {
                "code": 429,
                "message": "Resource has been exhausted. Please retry in 2s.",
                "status": "RESOURCE_EXHAUSTED",
            }
        },
        {"candidates": [cand([{"text": "never"}], "STOP")]},
    )
    out = parse_sse(t.feed(raw))
    assert out[0]["choices"][0]["delta"]["content"] == "partial"
    assert out[1] == {
        "error": {
            "message": "Resource has been exhausted. Please retry in 2s.",
            "type": "rate_limit_error",
            "param": None,
            "code": "RESOURCE_EXHAUSTED",
        }
    }
    assert len(out) == 2 and t.failed
    assert t.feed(gemini_sse({"candidates": [cand([{"text": "more"}], "STOP")]})) == []
    assert t.finish() == []  # no [DONE] after an error, as OpenAI does


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"data: {not json\r\n\r\n", "undecodable"),
        (b"data: 42\r\n\r\n", "not an object"),
        (b"", "without sending any response"),
        (b": keep-alive\r\n\r\n", "without sending any response"),
        (gemini_sse({"candidates": [cand([{"text": "cut"}])]}), "cut off"),
    ],
)
def test_broken_streams_end_with_one_error_event(raw: bytes, fragment: str) -> None:
    out = run_stream(raw)
    errors = [e for e in out if isinstance(e, dict) and "error" in e]
    assert len(errors) == 1 and out[-1] is errors[0]
    assert fragment in errors[0]["error"]["message"]
    assert errors[0]["error"]["type"] == "api_error"
    assert "[DONE]" not in out


def test_feed_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: Any) -> Any:
        raise RuntimeError("kaput")

    monkeypatch.setattr(g, "_read_candidate", boom)
    t = GeminiStreamTranslator(model="m")
    out = parse_sse(t.feed(gemini_sse({"candidates": [cand([{"text": "x"}])]})))
    assert len(out) == 1 and "kaput" in out[0]["error"]["message"]
    assert t.feed(b"data: {}\r\n\r\n") == [] and t.finish() == []


def test_stream_tolerates_lf_cr_framing_and_array_events() -> None:
    reference = run_stream(TEXT_STREAM)
    for eol in (b"\n", b"\r"):
        assert run_stream(TEXT_STREAM.replace(b"\r\n", eol)) == reference
    # A final event without its blank line is still delivered at the end of the body.
    assert run_stream(TEXT_STREAM[:-4]) == reference
    events = [json.loads(b[6:]) for b in TEXT_STREAM.split(b"\r\n\r\n")[:-1]]
    assert run_stream(b"data: " + json.dumps(events).encode() + b"\n\n") == reference


RICH_STREAM = gemini_sse(
    {"candidates": [cand([{"text": "Thinking… ✓", "thought": True}])], "responseId": "rich"},
    {"candidates": [cand([{"text": "Grüße 😀 "}, {"text": "日本語"}])], "responseId": "rich"},
    b": comment line",
    {
        "candidates": [
            cand(
                [{"functionCall": {"name": "f", "args": {"s": "naïve"}}, "thoughtSignature": "c2lnbmF0dXJl"}]
            )
        ]
    },
    {
        "candidates": [cand([{"text": ""}], "STOP")],
        "usageMetadata": {
            "promptTokenCount": 9,
            "candidatesTokenCount": 4,
            "thoughtsTokenCount": 2,
            "totalTokenCount": 15,
        },
    },
)


def _normalised(out: list[Any]) -> list[Any]:
    return [{**e, "created": 0} if isinstance(e, dict) and "created" in e else e for e in out]


def test_stream_split_at_every_byte_gives_identical_chunks() -> None:
    whole = _normalised(run_stream(RICH_STREAM, include_usage=True))
    assert whole[-1] == "[DONE]" and len(whole) == 6
    for cut in range(1, len(RICH_STREAM)):
        assert _normalised(run_stream(RICH_STREAM, splits=[cut], include_usage=True)) == whole, cut
    one_by_one = list(range(1, len(RICH_STREAM)))
    assert _normalised(run_stream(RICH_STREAM, splits=one_by_one, include_usage=True)) == whole


@given(st.lists(st.integers(1, len(RICH_STREAM) - 1), max_size=40).map(lambda xs: sorted(set(xs))))
@FAST
def test_stream_random_splits_give_identical_chunks(splits: list[int]) -> None:
    whole = _normalised(run_stream(RICH_STREAM, include_usage=True))
    assert _normalised(run_stream(RICH_STREAM, splits=splits, include_usage=True)) == whole


# ---------------------------------------------------------------------------------------------------
# the fake Gemini server, over loopback
# ---------------------------------------------------------------------------------------------------

KEY = "AIzaFakeKeyForTheUnitTests0000000000000"


@pytest.fixture(scope="module")
def fake() -> Any:
    with FakeGemini(keys=(KEY,), chunks=4) as server:
        yield server


@pytest.fixture
def gem(fake: FakeGemini) -> Any:
    fake.reset()
    with httpx.Client(
        base_url=fake.base_url, headers={"x-goog-api-key": KEY}, timeout=10, trust_env=False
    ) as c:
        yield c


def test_fake_lists_models_in_pages(fake: FakeGemini, gem: httpx.Client) -> None:
    ids: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"pageSize": 2, **({"pageToken": token} if token else {})}
        ids_page, token = parse_model_page(gem.get("/v1beta/models", params=params).json())
        ids += ids_page
        pages += 1
        if token is None:
            break
    assert pages == 4
    assert ids == [
        "gemini-2.5-flash",
        "gemini-2.5-pro",
        "gemini-2.5-flash-lite",
        "gemini-2.0-flash",
        "gemini-3-pro-preview",
    ]
    assert gem.get("/v1beta/models", params={"pageToken": "bogus!"}).status_code == 400


def test_fake_rejects_bad_keys_like_google(gem: httpx.Client) -> None:
    r = gem.post(gemini_path(MODEL, False), json={}, headers={"x-goog-api-key": "wrong"})
    status, err, _ = gemini_error_to_openai(r.status_code, r.content)
    assert (r.status_code, status, err["error"]["code"]) == (400, 400, "API_KEY_INVALID")


def test_fake_echo_non_stream_and_stream(fake: FakeGemini, gem: httpx.Client) -> None:
    body = to_gemini_request({"messages": [{"role": "user", "content": "hello there"}]}, model=MODEL)
    r = gem.post(gemini_path(MODEL, False), json=body)
    assert (
        from_gemini_response(r.json(), model=MODEL)["choices"][0]["message"]["content"] == "echo: hello there"
    )

    raw = b""
    with gem.stream("POST", gemini_path(MODEL, True), json=body) as resp:
        assert resp.headers["transfer-encoding"] == "chunked" and "content-length" not in resp.headers
        assert resp.headers["content-type"] == "text/event-stream"
        pieces = list(resp.iter_raw())
        raw = b"".join(pieces)
    assert raw.count(b"\r\n\r\n") == 4 and b"[DONE]" not in raw
    out = run_stream(raw, include_usage=True)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in out[:-2]) == "echo: hello there"
    assert out[-2]["usage"]["completion_tokens"] == 3
    rec = fake.last_generate()
    assert rec.headers["x-goog-api-key"] == KEY and rec.json() == body and rec.path.endswith("?alt=sse")


def test_fake_scripts_faults_per_key_and_in_order(fake: FakeGemini, gem: httpx.Client) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
    fake.enqueue(rate_limited("12.5s"), key="someone-else")
    fake.enqueue(server_error(503), rate_limited("7.25s", per_day=True))
    first = gem.post(gemini_path(MODEL, False), json=body)
    second = gem.post(gemini_path(MODEL, False), json=body)
    third = gem.post(gemini_path(MODEL, False), json=body)
    assert [first.status_code, second.status_code, third.status_code] == [503, 429, 200]
    assert retry_info(second.content) == (7.25, True)
    assert fake.pending() == 1  # the other key's script is still waiting
    assert fake.keys_used() == [KEY, KEY, KEY]


def test_fake_refuses_what_google_refuses(gem: httpx.Client) -> None:
    bad = {
        "contents": [{"role": "user", "parts": [{"text": "x"}]}],
        "tools": [
            {
                "functionDeclarations": [
                    {"name": "f", "parameters": {"type": "object", "additionalProperties": False}}
                ]
            }
        ],
    }
    r = gem.post(gemini_path(MODEL, False), json=bad)
    assert r.status_code == 400 and "additionalProperties" in r.json()["error"]["message"]
    with pytest.raises(GeminiRejection):
        validate_request({"contents": [{"role": "user", "parts": [{"text": ""}]}]})
    r = gem.post(gemini_path("gemini-nope", False), json=bad)
    assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"


def test_fake_tool_calls_and_thought_signature_check(fake: FakeGemini, gem: httpx.Client) -> None:
    model = "gemini-3-pro-preview"
    messages: list[dict[str, Any]] = [{"role": "user", "content": "weather?"}]
    fake.enqueue(Reply(tool_calls=[("get_weather", {"city": "Paris"}), ("get_time", {})]))
    raw = b""
    with gem.stream(
        "POST", gemini_path(model, True), json=to_gemini_request({"messages": messages}, model=model)
    ) as r:
        raw = b"".join(r.iter_raw())
    out = run_stream(raw)
    calls = [tc for c in out[:-1] for tc in c["choices"][0]["delta"].get("tool_calls") or []]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert out[-2]["choices"][0]["finish_reason"] == "tool_calls"
    for c in calls:
        c.pop("index")
    messages += [
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": '{"temp": 20}'},
        {"role": "tool", "tool_call_id": calls[1]["id"], "content": "noon"},
    ]
    r = gem.post(gemini_path(model, False), json=to_gemini_request({"messages": messages}, model=model))
    assert r.status_code == 200, r.text
    answer = from_gemini_response(r.json(), model=model)["choices"][0]["message"]["content"]
    assert answer == 'echo: get_weather -> {"temp": 20} get_time -> {"content": "noon"}'
    assert [(c.function, c.ok) for c in fake.signature_checks] == [("get_weather", True)]

    # A client that lost the signature gets Gemini 3's 400, and the check records it.
    messages[1]["tool_calls"] = [{**calls[0], "id": "call_lost"}, calls[1]]
    messages[2]["tool_call_id"] = "call_lost"
    sent = to_gemini_request({"messages": messages}, model="gemini-2.5-flash")  # no placeholder on 2.5
    r = gem.post(gemini_path(model, False), json=sent)
    assert r.status_code == 400 and "thought_signature" in r.json()["error"]["message"]
    assert fake.signature_checks[-1].received is None and not fake.signature_checks[-1].ok


def test_fake_mid_stream_error_drop_and_raw_events(fake: FakeGemini, gem: httpx.Client) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "one two three four"}]}]}
    fake.enqueue(Reply(error_after=2), Reply(drop_after=1))
    with gem.stream("POST", gemini_path(MODEL, True), json=body) as r:
        out = run_stream(b"".join(r.iter_raw()))
    assert out[-1]["error"]["code"] == "UNAVAILABLE" and len(out) == 3
    with (
        pytest.raises(httpx.RemoteProtocolError),
        gem.stream("POST", gemini_path(MODEL, True), json=body) as r,
    ):
        b"".join(r.iter_raw())
    fake.enqueue(raw_stream([{"candidates": [cand([{"text": "raw"}], "STOP")]}]))
    with gem.stream("POST", gemini_path(MODEL, True), json=body) as r:
        out = run_stream(b"".join(r.iter_raw()))
    assert out[0]["choices"][0]["delta"]["content"] == "raw"


def test_fake_slow_headers_dropped_connections_thoughts_and_blocks(
    fake: FakeGemini, gem: httpx.Client
) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
    fake.enqueue(Reply(header_delay=0.5))
    with pytest.raises(httpx.ReadTimeout):
        gem.post(gemini_path(MODEL, False), json=body, timeout=httpx.Timeout(5, read=0.1))
    fake.enqueue(dropped())
    with pytest.raises(httpx.RemoteProtocolError):
        gem.post(gemini_path(MODEL, False), json=body)
    fake.enqueue(Reply(text="fine", thoughts="pondering deeply"), Reply(block_reason="SAFETY"))
    thought = from_gemini_response(gem.post(gemini_path(MODEL, False), json=body).json(), model=MODEL)
    assert thought["choices"][0]["message"]["reasoning_content"] == "pondering deeply"
    assert thought["usage"]["completion_tokens_details"]["reasoning_tokens"] == 2
    blocked = from_gemini_response(gem.post(gemini_path(MODEL, False), json=body).json(), model=MODEL)
    assert blocked["choices"][0]["finish_reason"] == "content_filter"
    fake.enqueue_models(server_error(500))
    assert gem.get("/v1beta/models").status_code == 500
    assert gem.get("/v1beta/models").status_code == 200

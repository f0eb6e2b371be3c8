"""Requests Gemini must not refuse, through a real proxy: each rule of translators/gemini reaches a fake
Gemini that refuses what Google refuses (the shared fake's checks plus the ones below), streamed and not.

Where the fake cannot tell right from wrong (a penalty sent where it is allowed, the order of keys), the
test reads the request the fake recorded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import openai
import pytest

from tests.conftest import OPENROUTER_KEYS
from tests.fakes.fake_gemini import DEFAULT_MODELS, GENERATE, FakeGemini, GeminiRejection
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.fakes.server import Recorded
from tests.harness import ProxyProcess

KEYS = ("AIzaSyRfsl2lq9Mv6u716le-RGp9Ge78XAgwoRKX", "AIzaSyRfsHQtSUmhbaH2zAkahLMK4zcNzo-g1vF")
MODELS = (*DEFAULT_MODELS, ("gemma-3-27b-it", GENERATE), ("gemma-4-31b-it", GENERATE))
SYSTEM = {"role": "system", "content": "Answer in French."}


def _bad(message: str) -> GeminiRejection:
    return GeminiRejection(400, "INVALID_ARGUMENT", message)


def _objects_without_properties(schema: Any, where: str) -> list[str]:
    if not isinstance(schema, dict):
        return []
    found = [where] if schema.get("type") == "object" and not schema.get("properties") else []
    for name, sub in (schema.get("properties") or {}).items():
        found += _objects_without_properties(sub, f"{where}.properties[{name}]")
    for k, sub in enumerate(schema.get("anyOf") or []):
        found += _objects_without_properties(sub, f"{where}.any_of[{k}]")
    return found + _objects_without_properties(schema.get("items"), f"{where}.items")


class RefusingGemini(FakeGemini):
    """Refuses, with Google's wording, what the shared fake lets through: penalties on models without
    them, a system instruction for Gemma 3, a thinking budget for Gemma 4, an object without properties at
    any depth, and an external fileData without its mimeType."""

    def _generate(
        self, h: BaseHTTPRequestHandler, rec: Recorded, model: str, stream: bool, sse: bool
    ) -> None:
        body = rec.json()
        gen = body.get("generationConfig") or {}
        if (gen.get("presencePenalty") or gen.get("frequencyPenalty")) and not model.startswith("gemini-2.0"):
            raise _bad(f"Penalty is not enabled for models/{model}")
        if model.startswith("gemma-3") and "systemInstruction" in body:
            raise _bad(f"Developer instruction is not enabled for models/{model}")
        if model.startswith("gemma") and "thinkingBudget" in (gen.get("thinkingConfig") or {}):
            raise _bad("Thinking budget is not supported for this model.")
        schemas = [("generation_config.response_schema", gen.get("responseSchema"))]
        for d, decl in enumerate((body.get("tools") or [{}])[0].get("functionDeclarations") or []):
            schemas.append((f"tools[0].function_declarations[{d}].parameters", decl.get("parameters")))
        for where, schema in schemas:
            for path in _objects_without_properties(schema, where):
                raise _bad(
                    f"* GenerateContentRequest.{path}.properties: should be non-empty for OBJECT type\n"
                )
        for content in body["contents"]:
            for part in content["parts"]:
                if "fileData" in part and "mimeType" not in part["fileData"]:
                    raise _bad("* GenerateContentRequest.contents.parts.file_data.mime_type: required\n")
        super()._generate(h, rec, model, stream, sse)


@pytest.fixture(scope="module")
def gemini() -> Iterator[RefusingGemini]:
    with RefusingGemini(KEYS, MODELS) as fake:
        yield fake  # type: ignore[misc]  # FakeServer.__enter__ is typed as the base class


@pytest.fixture(scope="module")
def rproxy(gemini: RefusingGemini, openrouter: FakeOpenRouter) -> Iterator[ProxyProcess]:
    env = {
        "GEMINI_API_KEY_1": KEYS[0],
        "GEMINI_API_KEY_2": KEYS[1],
        "GEMINI_API_BASE_URL": gemini.base_url,
        "OPENROUTER_API_KEY_1": OPENROUTER_KEYS[0],
        "OPENROUTER_API_BASE_URL": openrouter.base_url,
        "PROXY_TIMEOUT": "5",
    }
    with ProxyProcess(env=env) as p:
        yield p


@pytest.fixture
def client(
    rproxy: ProxyProcess, gemini: RefusingGemini, request: pytest.FixtureRequest
) -> Iterator[openai.OpenAI]:
    gemini.reset()
    session = re.sub(r"[^A-Za-z0-9_.:\[\]-]", "_", request.node.name)[:128]
    with openai.OpenAI(
        base_url=rproxy.base_url,
        api_key="client-side-key",
        max_retries=0,
        timeout=20,
        default_headers={"X-Session-ID": session},
    ) as c:
        yield c


def _ask(client: openai.OpenAI, stream: bool, **kw: Any) -> str:
    """The answer's text, streamed or not; the proxy must answer 200 either way."""
    if not stream:
        return client.chat.completions.create(**kw).choices[0].message.content or ""
    chunks = client.chat.completions.create(**kw, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize("stream", [False, True])
def test_penalties_reach_only_models_that_take_them(
    client: openai.OpenAI, gemini: RefusingGemini, stream: bool
) -> None:
    """https://github.com/google-gemini/cookbook/blob/main/quickstarts/New_in_002.ipynb: the 2.5 series
    has no presence/frequency penalties; 2.0 has them."""
    for model, sent in (("gemini-2.5-flash", False), ("gemini-2.0-flash", True)):
        text = _ask(client, stream, model=f"gemini:{model}", messages=[{"role": "user", "content": "hi"}],
                    presence_penalty=0.5, frequency_penalty=0.25)  # fmt: skip
        assert text == "echo: hi"
        gen = gemini.last_generate().json().get("generationConfig") or {}
        assert ("presencePenalty" in gen and "frequencyPenalty" in gen) is sent


@pytest.mark.parametrize("stream", [False, True])
def test_gemma_3_reads_the_system_prompt_in_the_first_user_turn(
    client: openai.OpenAI, gemini: RefusingGemini, stream: bool
) -> None:
    """https://ai.google.dev/gemma/docs/core/prompt-structure: Gemma 3 takes its instructions in the first
    user turn; the API refuses a system instruction for it."""
    text = _ask(
        client, stream, model="gemini:gemma-3-27b-it", messages=[SYSTEM, {"role": "user", "content": "hi"}]
    )
    assert text == "echo: Answer in French. hi"  # the fake echoes all the user text it was given
    body = gemini.last_generate().json()
    assert "systemInstruction" not in body
    assert body["contents"][0]["parts"][0] == {"text": "Answer in French."}


def test_gemma_4_keeps_its_system_prompt_and_thinks_by_level(
    client: openai.OpenAI, gemini: RefusingGemini
) -> None:
    """The Gemma 4 model card (https://ai.google.dev/gemma/docs/core/model_card_4): a system role, and a
    thinking mode; on the Gemini API it takes thinkingLevel, not a budget."""
    messages = [SYSTEM, {"role": "user", "content": "hi"}]
    text = _ask(client, True, model="gemini:gemma-4-31b-it", messages=messages, reasoning_effort="high")
    assert text == "echo: hi"
    body = gemini.last_generate().json()
    assert body["systemInstruction"] == {"parts": [{"text": "Answer in French."}]}
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "high", "includeThoughts": True}


FREE_FORM_TOOL = {
    "type": "function",
    "function": {
        "name": "run",
        "parameters": {
            "type": "object",
            "properties": {
                "cmd": {"type": "string"},
                "env": {"type": "object", "additionalProperties": {"type": "string"}},
                "level": {"type": "integer", "enum": [1, 2, 3]},
                "by_id": {"type": "string"},
                "by_name": {"type": "string"},
            },
            "oneOf": [{"required": ["cmd", "by_id"]}, {"required": ["cmd", "by_name"]}],
        },
    },
}
ORDERED = {
    "type": "json_schema",
    "json_schema": {
        "name": "out",
        "schema": {
            "type": "object",
            "properties": {
                "a": {"type": "string"},
                "b": {"type": "boolean", "enum": [True]},
                "meta": {"type": "object"},
            },
            "propertyOrdering": ["b", "a"],
        },
    },
}


@pytest.mark.parametrize("stream", [False, True])
def test_schema_idioms_reach_gemini_in_its_own_terms(
    client: openai.OpenAI, gemini: RefusingGemini, stream: bool
) -> None:
    """https://ai.google.dev/api/caching#Schema: no object without properties, enums as strings with
    `format: enum`, propertyOrdering kept; an object whose oneOf variants only list `required` fields
    stays an object with its properties."""
    text = _ask(client, stream, model="gemini:gemini-2.5-flash", messages=[{"role": "user", "content": "go"}],
                tools=[FREE_FORM_TOOL], response_format=ORDERED)  # fmt: skip
    assert text == "echo: go"
    body = gemini.last_generate().json()
    params = body["tools"][0]["functionDeclarations"][0]["parameters"]
    assert params["type"] == "object" and "anyOf" not in params
    assert params["required"] == ["cmd"]
    assert params["properties"]["env"] == {"description": "Any JSON object."}
    assert params["properties"]["level"] == {"type": "string", "format": "enum", "enum": ["1", "2", "3"]}
    schema = body["generationConfig"]["responseSchema"]
    assert schema["propertyOrdering"] == ["b", "a", "meta"]
    assert schema["properties"]["b"] == {"type": "string", "format": "enum", "enum": ["true"]}


@pytest.mark.parametrize("stream", [False, True])
def test_an_extensionless_media_url_is_no_proxy_error(
    client: openai.OpenAI, gemini: RefusingGemini, stream: bool
) -> None:
    """https://ai.google.dev/gemini-api/docs/file-input-methods: Gemini fetches HTTPS and signed URLs given
    as fileData with a mimeType. The proxy's own fetch refuses this loopback address, so Gemini gets the
    URL with a guessed type (no network is touched either way)."""
    url = "http://127.0.0.1:9/avatar/7?s=64"
    content = [{"type": "text", "text": "who"}, {"type": "image_url", "image_url": {"url": url}}]
    text = _ask(
        client, stream, model="gemini:gemini-2.5-flash", messages=[{"role": "user", "content": content}]
    )
    assert text == "echo: who"
    parts = gemini.last_generate().json()["contents"][0]["parts"]
    assert parts[1] == {"fileData": {"mimeType": "image/jpeg", "fileUri": url}}

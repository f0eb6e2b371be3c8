"""`POST /v1/embeddings` through the real pipeline, backends and translators, in-process (MockUpstream):
model resolution, rotation and rests, errors in OpenAI's shape, redaction, and the openai SDK."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import openai
import pytest

from addons.frontends.base import Reply
from addons.pipeline import dispatch
from addons.pipeline.core import Core
from addons.records import Usage
from addons.upstream import UpstreamCall, UpstreamError
from tests.unit.pipeline.conftest import GEMINI_KEYS, OR_KEYS, MakeCore, run
from tests.unit.pipeline.inproc import client_kwargs
from tests.unit.pipeline.mock_upstream import MockAnswer, json_answer

GEMINI = "gemini:gemini-embedding-001"
OR_MODEL = "openai/text-embedding-3-small"


def vector(text: str) -> list[float]:
    """What the providers below embed a text as: distinct per text, exact in float32."""
    return [float(len(text)), 0.5, -0.25]


def provider(c: UpstreamCall) -> MockAnswer:
    """Gemini's embedContent / batchEmbedContents and OpenRouter's embeddings, as they answer."""
    body = json.loads(c.body)
    path = urlsplit(c.url).path
    if path.endswith(":embedContent"):
        return json_answer(200, {"embedding": {"values": vector(body["content"]["parts"][0]["text"])}})
    if path.endswith(":batchEmbedContents"):
        texts = [r["content"]["parts"][0]["text"] for r in body["requests"]]
        return json_answer(200, {"embeddings": [{"values": vector(t)} for t in texts]})
    assert path == "/api/v1/embeddings", path
    texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
    data = [{"object": "embedding", "index": i, "embedding": vector(str(t))} for i, t in enumerate(texts)]
    usage = {"prompt_tokens": 4, "total_tokens": 4}
    return json_answer(200, {"object": "list", "data": data, "model": body["model"], "usage": usage})


def post(core: Core, body: Any, headers: dict[str, str] | None = None, method: str = "POST") -> Reply:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()

    async def go() -> Reply:
        reply = await dispatch.handle(core, method, "/v1/embeddings", headers or {}, raw)
        assert reply is not None
        return reply

    return run(go())


def key_of(c: UpstreamCall) -> str:
    return c.headers.get("authorization", "").removeprefix("Bearer ") or c.headers.get("x-goog-api-key", "")


def test_one_input_on_gemini_is_embed_content_answered_as_openai(make_core: MakeCore) -> None:
    core, up = make_core(provider)
    reply = post(core, {"model": GEMINI, "input": "hello", "dimensions": 3, "user": "u1"})
    assert reply.status == 200, reply.body
    assert json.loads(reply.body) == {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": vector("hello")}],
        "model": "gemini-embedding-001",
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
    }
    (sent,) = up.calls
    assert (
        sent.url
        == "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:embedContent"
    )
    assert json.loads(sent.body) == {"content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 3}
    assert sent.headers["x-goog-api-key"] in GEMINI_KEYS and "key=" not in sent.url
    assert reply.headers["x-llm-intercept-model"] == "gemini:gemini-embedding-001"
    record = reply.record
    assert record is not None and record.frontend == "embeddings" and record.status == 200
    assert (record.backend, record.model, record.key) == (
        "gemini",
        "gemini-embedding-001",
        "GEMINI_API_KEY_1",
    )
    assert record.usage == Usage()


def test_several_inputs_on_gemini_are_one_batch_and_base64_is_float32(make_core: MakeCore) -> None:
    core, up = make_core(provider)
    reply = post(core, {"model": GEMINI, "input": ["a", "bbb"], "encoding_format": "base64"})
    data = json.loads(reply.body)["data"]
    assert [d["index"] for d in data] == [0, 1]
    assert all(isinstance(d["embedding"], str) for d in data)
    assert up.calls[0].url.endswith("/models/gemini-embedding-001:batchEmbedContents")
    assert [r["model"] for r in json.loads(up.calls[0].body)["requests"]] == [
        "models/gemini-embedding-001"
    ] * 2


def test_token_arrays_are_a_400_on_gemini_and_pass_through_to_openrouter(make_core: MakeCore) -> None:
    core, up = make_core(provider)
    reply = post(core, {"model": GEMINI, "input": [[1, 2, 3]]})
    err = json.loads(reply.body)["error"]
    assert reply.status == 400 and err["param"] == "input" and "Token arrays" in err["message"]
    assert up.calls == []
    reply = post(core, {"model": OR_MODEL, "input": [[1, 2, 3]], "encoding_format": "float"})
    assert reply.status == 200 and len(json.loads(reply.body)["data"]) == 1
    (sent,) = up.calls
    assert sent.url == "https://openrouter.ai/api/v1/embeddings"
    assert json.loads(sent.body) == {"model": OR_MODEL, "input": [[1, 2, 3]], "encoding_format": "float"}
    assert key_of(sent) in OR_KEYS and reply.headers["x-llm-intercept-model"] == f"openrouter:{OR_MODEL}"


def test_models_resolve_as_for_chat_and_unlisted_ones_go_unchecked_to_the_backend(
    make_core: MakeCore,
) -> None:
    yaml = {"model_map": {"text-embedding-3-*": GEMINI}}
    core, up = make_core(provider, yaml=yaml)
    assert post(core, {"model": "text-embedding-3-large", "input": "x"}).status == 200
    assert ":embedContent" in up.calls[-1].url  # mapped to Gemini
    # The catalogs list generating models only: an embedding model's name is sent as it is.
    assert post(core, {"model": "some-embedder", "input": "x"}).status == 200
    assert json.loads(up.calls[-1].body)["model"] == "some-embedder"
    assert up.calls[-1].url.startswith("https://openrouter.ai/")


def test_a_rate_limited_key_rests_and_the_next_key_answers(make_core: MakeCore) -> None:
    def handler(c: UpstreamCall) -> MockAnswer:
        if key_of(c) == GEMINI_KEYS[0]:
            return json_answer(
                429, {"error": {"code": 429, "message": "slow", "status": "RESOURCE_EXHAUSTED"}}
            )
        return provider(c)

    core, up = make_core(handler)
    reply = post(core, {"model": GEMINI, "input": "x"})
    assert reply.status == 200 and [key_of(c) for c in up.calls] == list(GEMINI_KEYS)
    assert reply.record is not None and [a.status for a in reply.record.attempts] == [429, 200]
    cooldowns = core.stores.cooldowns
    assert run(cooldowns.remaining("gemini", "gemini-embedding-001", "GEMINI_API_KEY_1")) > 0
    up.calls.clear()
    assert post(core, {"model": GEMINI, "input": "x"}).status == 200
    assert [key_of(c) for c in up.calls] == [GEMINI_KEYS[1]]  # the rested key is skipped


def test_every_key_rate_limited_is_a_429_naming_the_keys(make_core: MakeCore) -> None:
    limited = json_answer(429, {"error": {"message": "slow down"}}, **{"retry-after": "30"})
    core, up = make_core(lambda c: limited)
    reply = post(core, {"model": OR_MODEL, "input": "x"})
    err = json.loads(reply.body)["error"]
    assert reply.status == 429 and err["code"] == "all_keys_cooling_down"
    assert "OPENROUTER_API_KEY_1" in err["message"] and int(reply.headers["retry-after"]) in (29, 30)
    assert len(up.calls) == 2
    again = post(core, {"model": OR_MODEL, "input": "x"})
    assert again.status == 429 and len(up.calls) == 2  # refused before any provider is called


def test_server_errors_fail_over_and_client_errors_are_final(make_core: MakeCore) -> None:
    def flaky(c: UpstreamCall) -> MockAnswer:
        return (
            json_answer(503, {"error": {"message": "overloaded"}}) if key_of(c) == OR_KEYS[0] else provider(c)
        )

    core, up = make_core(flaky)
    assert post(core, {"model": OR_MODEL, "input": "x"}).status == 200 and len(up.calls) == 2
    gemini_400 = {"error": {"code": 400, "message": "bad dims", "status": "INVALID_ARGUMENT"}}
    core, up = make_core(lambda c: json_answer(400, gemini_400))
    reply = post(core, {"model": GEMINI, "input": "x"})
    err = json.loads(reply.body)["error"]
    assert reply.status == 400 and len(up.calls) == 1
    assert "bad dims" in err["message"] and err["type"] == "invalid_request_error"
    assert reply.record is not None and reply.record.status == 400


@pytest.mark.parametrize(
    "answer",
    [
        MockAnswer(200, b"<html>not json</html>", {"content-type": "text/html"}),
        json_answer(200, {"error": {"message": "upstream provider failed"}}),  # OpenRouter does this
        json_answer(200, {"embedding": {"values": "nope"}}),
    ],
)
def test_a_2xx_that_is_no_embeddings_list_is_retried_then_a_502(
    make_core: MakeCore, answer: MockAnswer
) -> None:
    for model in (OR_MODEL, GEMINI):
        core, up = make_core(lambda c: answer)
        reply = post(core, {"model": model, "input": "x"})
        err = json.loads(reply.body)["error"]
        assert reply.status == 502 and err["code"] == "upstream_bad_response", reply.body
        assert len(up.calls) == 2 and reply.headers["x-should-retry"] == "false"


def test_unreachable_upstreams_end_in_an_openai_error(make_core: MakeCore) -> None:
    core, up = make_core(
        lambda c: UpstreamError(502, "Cannot connect to upstream x.", "upstream_unreachable")
    )
    reply = post(core, {"model": OR_MODEL, "input": "x"})
    assert reply.status == 502 and json.loads(reply.body)["error"]["code"] == "upstream_unreachable"
    assert len(up.calls) == 2


def test_a_key_in_the_input_never_leaves_nor_one_echoed_in_an_error(make_core: MakeCore) -> None:
    core, up = make_core(provider)
    assert post(core, {"model": GEMINI, "input": [f"my key {OR_KEYS[1]}", "b"]}).status == 200
    assert OR_KEYS[1].encode() not in up.calls[0].body and b"REDACTED" in up.calls[0].body
    echo = json_answer(401, {"error": {"message": f"Incorrect API key provided: {OR_KEYS[0]}"}})
    core, _ = make_core(lambda c: echo)
    reply = post(core, {"model": OR_MODEL, "input": "x"})
    assert reply.status == 401 and OR_KEYS[0].encode() not in reply.body


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (b"{not json", 400, None),
        ([1, 2], 400, None),
        ({"input": "x"}, 400, "model"),
        ({"model": OR_MODEL}, 400, "input"),
        ({"model": GEMINI, "input": "x", "encoding_format": "hex"}, 400, "encoding_format"),
        ({"model": "gemini:", "input": "x"}, 400, "model"),
    ],
)
def test_unusable_requests_are_openai_errors(
    make_core: MakeCore, body: Any, status: int, param: str | None
) -> None:
    core, up = make_core(provider)
    reply = post(core, body)
    err = json.loads(reply.body)["error"]
    assert reply.status == status and err["param"] == param and err["type"] == "invalid_request_error"
    assert up.calls == []


def test_too_large_bad_session_and_wrong_method(make_core: MakeCore) -> None:
    core, _ = make_core(provider, env={"LLM_MAX_REQUEST_BYTES": "1024"})
    assert post(core, {"model": OR_MODEL, "input": "x" * 2000}).status == 413
    assert post(core, {"model": OR_MODEL, "input": "x"}, {"x-session-id": "\x01"}).status == 400
    reply = post(core, b"", method="GET")
    assert reply.status == 405 and "use POST" in json.loads(reply.body)["error"]["message"]


def test_no_key_for_the_backend_is_a_503_naming_the_variable(make_core: MakeCore) -> None:
    core, up = make_core(provider, env={"GEMINI_API_KEY_1": "", "GEMINI_API_KEY_2": ""})
    reply = post(core, {"model": GEMINI, "input": "x"})
    assert reply.status == 503 and "GEMINI_API_KEY" in json.loads(reply.body)["error"]["message"]
    assert up.calls == []


def test_the_openai_sdk_gets_floats_whether_it_asks_for_base64_or_float(make_core: MakeCore) -> None:
    core, up = make_core(provider)
    with openai.OpenAI(api_key="k", max_retries=0, **client_kwargs(core)) as client:
        for model in (GEMINI, OR_MODEL):
            # Without encoding_format the SDK asks for base64 and decodes it itself.
            default = client.embeddings.create(model=model, input=["ab", "c"])
            floats = client.embeddings.create(model=model, input="abc", encoding_format="float")
            assert [d.embedding for d in default.data] == [vector("ab"), vector("c")]
            assert floats.data[0].embedding == vector("abc") and floats.object == "list"
    gemini_sent = [json.loads(c.body) for c in up.calls if "x-goog-api-key" in c.headers]
    assert len(gemini_sent) == 2

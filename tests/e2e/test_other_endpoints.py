"""The other OpenAI endpoints end to end (real mitmdump, the official openai SDK): `/v1/embeddings` on both
backends (floats and base64), the legacy `/v1/completions` (whole and streamed), and every other `/v1/*`
path answered with OpenAI's error JSON naming what is served, in reverse mode and on api.openai.com in
explicit-proxy mode, never forwarded.

The shared fakes serve generation only; the fakes here add the embeddings endpoints as the providers
answer them (Gemini's embedContent / batchEmbedContents, checked as Google checks them; OpenRouter's
OpenAI-shaped /embeddings, base64 included).
"""

from __future__ import annotations

import array
import base64
import ssl
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import openai
import pytest

from tests.conftest import OPENROUTER_KEYS
from tests.fakes.fake_gemini import DEFAULT_MODELS, FakeGemini, error_json, invalid_key_body
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.fakes.server import Recorded
from tests.harness import ProxyProcess

GEMINI_KEYS = ("AIzaSyNltpghSXyZNWsLFEUFnFSbjpcforuidTu", "AIzaSy1M7ECd3k3RHcrWmfqlfasA1dHNJ9WcjNe")
GEMINI_EMBEDDER = "gemini:text-embedding-004"  # the fake lists it with embedContent only
OR_EMBEDDER = "openai/text-embedding-3-small"
EMBED_FIELDS = {"content", "taskType", "title", "outputDimensionality"}


def vector(text: str, dims: int | None = None) -> list[float]:
    """What both fakes embed a text as: distinct per text, exact in float32."""
    return [float(len(text)), 0.5, -0.25, 2.0][:dims]


def floats(b64: str) -> list[float]:
    return array.array("f", base64.b64decode(b64)).tolist()


class EmbeddingGemini(FakeGemini):
    """FakeGemini with `:embedContent` and `:batchEmbedContents`."""

    def handle(self, h: BaseHTTPRequestHandler, rec: Recorded) -> None:
        path = unquote(urlsplit(rec.path).path)
        model, _, method = path.removeprefix("/v1beta/models/").rpartition(":")
        if rec.method != "POST" or method not in ("embedContent", "batchEmbedContents"):
            super().handle(h, rec)
            return
        if self.key_of(rec) not in self.keys:
            self.send_json(h, 400, invalid_key_body())
            return
        if not any(m == model and "embedContent" in methods for m, methods in self.models):
            message = (
                f"models/{model} is not found for API version v1beta, or is not supported for embedContent."
            )
            self.send_json(h, 404, error_json(404, "NOT_FOUND", message))
            return
        body = rec.json()
        requests = [body] if method == "embedContent" else body.get("requests") or []
        problem = _embed_problem(requests, model, batched=method == "batchEmbedContents")
        if problem:
            self.send_json(h, 400, error_json(400, "INVALID_ARGUMENT", problem))
            return
        values = [vector(r["content"]["parts"][0]["text"], r.get("outputDimensionality")) for r in requests]
        answer = {"embedding": {"values": values[0]}} if method == "embedContent" else None
        self.send_json(h, 200, answer or {"embeddings": [{"values": v} for v in values]})


def _embed_problem(requests: list[dict[str, Any]], model: str, batched: bool) -> str | None:
    """What Google would refuse in these EmbedContentRequests, or None."""
    if not requests:
        raise AssertionError("no requests in the body")
    for r in requests:
        extra = set(r) - EMBED_FIELDS - ({"model"} if batched else set())
        if extra:
            return f"Invalid JSON payload received. Unknown name {sorted(extra)[0]!r}"
        if batched and r.get("model") != f"models/{model}":
            return f"Model {r.get('model')!r} in a request does not match models/{model}."
        if not r.get("content", {}).get("parts"):
            return "* content.parts: contents must not be empty"
    return None


class EmbeddingOpenRouter(FakeOpenRouter):
    """FakeOpenRouter with OpenAI's `/embeddings`, honouring `encoding_format` as OpenAI does."""

    def handle(self, h: BaseHTTPRequestHandler, rec: Recorded) -> None:
        if (
            rec.method != "POST"
            or rec.path.split("?")[0] != "/api/v1/embeddings"
            or not self._authorised(rec)
        ):
            super().handle(h, rec)
            return
        body = rec.json()
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        data = []
        for i, text in enumerate(texts):
            values = vector(str(text), body.get("dimensions"))
            encoded = base64.b64encode(array.array("f", values).tobytes()).decode()
            embedding = encoded if body.get("encoding_format") == "base64" else values
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
        self.send_json(h, 200, {"object": "list", "data": data, "model": body["model"], "usage": usage})


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[EmbeddingGemini, EmbeddingOpenRouter, FakeOpenRouter]]:
    with (
        EmbeddingGemini(GEMINI_KEYS, DEFAULT_MODELS) as gemini,
        EmbeddingOpenRouter(OPENROUTER_KEYS) as openrouter,
        FakeOpenRouter(()) as target,
    ):
        yield gemini, openrouter, target  # type: ignore[misc]  # __enter__ is typed as the base class


@pytest.fixture(scope="module")
def oproxy(fakes: tuple[EmbeddingGemini, EmbeddingOpenRouter, FakeOpenRouter]) -> Iterator[ProxyProcess]:
    """Both backends (OpenRouter the default), a reverse target that must never be reached."""
    gemini, openrouter, target = fakes
    env = {
        "GEMINI_API_KEY_1": GEMINI_KEYS[0],
        "GEMINI_API_KEY_2": GEMINI_KEYS[1],
        "GEMINI_API_BASE_URL": gemini.base_url,
        "OPENROUTER_API_KEY_1": OPENROUTER_KEYS[0],
        "OPENROUTER_API_BASE_URL": openrouter.base_url,
        "PROXY_TIMEOUT": "5",
    }
    with ProxyProcess(env=env, reverse_target=f"http://127.0.0.1:{target.port}") as p:
        yield p
    assert target.requests == [], "a request reached the reverse target"


@pytest.fixture(autouse=True)
def _fresh(fakes: tuple[EmbeddingGemini, EmbeddingOpenRouter, FakeOpenRouter]) -> None:
    for fake in fakes:
        fake.reset()


@pytest.fixture
def client(oproxy: ProxyProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=oproxy.base_url, api_key="client-side-key", max_retries=0, timeout=20) as c:
        yield c


@pytest.fixture
def explicit(oproxy: ProxyProcess) -> Iterator[httpx.Client]:
    """Reaches https://api.openai.com through the proxy's regular mode, trusting mitmproxy's CA."""
    ctx = ssl.create_default_context(cafile=oproxy.ca_cert)
    with httpx.Client(proxy=oproxy.proxy_url, verify=ctx, timeout=20, trust_env=False) as c:
        yield c


# -- /v1/embeddings -------------------------------------------------------------------------------------


def test_embeddings_on_gemini_as_floats_and_base64(
    client: openai.OpenAI, fakes: tuple[EmbeddingGemini, EmbeddingOpenRouter, FakeOpenRouter]
) -> None:
    gemini = fakes[0]
    one = client.embeddings.create(model=GEMINI_EMBEDDER, input="hello", encoding_format="float")
    assert one.data[0].embedding == vector("hello") and one.model == "text-embedding-004"
    assert gemini.last(":embedContent").json() == {"content": {"parts": [{"text": "hello"}]}}
    # Without encoding_format the SDK asks for base64 and decodes it: the proxy encoded it as OpenAI does.
    batch = client.embeddings.create(model=GEMINI_EMBEDDER, input=["a", "bcd"], dimensions=2)
    assert [d.embedding for d in batch.data] == [vector("a", 2), vector("bcd", 2)]
    assert [d.index for d in batch.data] == [0, 1]
    assert len(gemini.last(":batchEmbedContents").json()["requests"]) == 2
    raw = client.embeddings.create(model=GEMINI_EMBEDDER, input="xy", encoding_format="base64")
    encoded = raw.data[0].embedding
    assert isinstance(encoded, str) and floats(encoded) == vector("xy")
    assert all(r.headers.get("x-goog-api-key") in GEMINI_KEYS for r in gemini.requests)


def test_embeddings_on_openrouter_as_floats_and_base64(
    client: openai.OpenAI, fakes: tuple[EmbeddingGemini, EmbeddingOpenRouter, FakeOpenRouter]
) -> None:
    openrouter = fakes[1]
    whole = client.embeddings.with_raw_response.create(model=OR_EMBEDDER, input=["a", "bb"])
    assert whole.headers["x-llm-intercept-model"] == f"openrouter:{OR_EMBEDDER}"
    assert [d.embedding for d in whole.parse().data] == [vector("a"), vector("bb")]
    sent = openrouter.last("/embeddings")
    assert sent.json() == {"model": OR_EMBEDDER, "input": ["a", "bb"], "encoding_format": "base64"}
    assert sent.headers["authorization"] == f"Bearer {OPENROUTER_KEYS[0]}"
    raw = client.embeddings.create(model=OR_EMBEDDER, input="xyz", encoding_format="base64")
    assert isinstance(raw.data[0].embedding, str) and floats(raw.data[0].embedding) == vector("xyz")
    floats_only = client.embeddings.create(model=OR_EMBEDDER, input=[[1, 2, 3]], encoding_format="float")
    assert floats_only.data[0].embedding == vector("[1, 2, 3]")  # token arrays pass through here


def test_embedding_errors_are_openai_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="Token arrays") as e:
        client.embeddings.create(model=GEMINI_EMBEDDER, input=[[1, 2, 3]])
    assert e.value.param == "input"
    with pytest.raises(openai.NotFoundError, match="not supported for embedContent"):
        client.embeddings.create(model="gemini:gemini-2.5-flash", input="x")  # a generating model


# -- /v1/completions ------------------------------------------------------------------------------------


def test_completions_create_and_stream_on_both_backends(client: openai.OpenAI) -> None:
    for model in ("openai/gpt-4o-mini", "gemini:gemini-2.5-flash"):
        whole = client.completions.create(model=model, prompt="Say hi", max_tokens=30)
        assert whole.object == "text_completion" and whole.choices[0].text == "echo: Say hi"
        assert whole.choices[0].finish_reason == "stop" and whole.usage is not None
        chunks = list(
            client.completions.create(
                model=model, prompt="stream me", stream=True, stream_options={"include_usage": True}
            )
        )
        assert "".join(c.choices[0].text for c in chunks if c.choices) == "echo: stream me"
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
        assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_completions_refuse_what_a_chat_model_cannot_do(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="one prompt per request") as e:
        client.completions.create(model="openai/gpt-4o-mini", prompt=["a", "b"])
    assert e.value.param == "prompt"


# -- everything else under /v1 --------------------------------------------------------------------------


def _assert_not_served(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/json"), r.text[:200]
    err = r.json()["error"]
    assert err["code"] == "path_not_served" and err["type"] == "not_found_error"
    for served in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"):
        assert served in err["message"]
    return err


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/files"), ("POST", "/v1/audio/speech")])
def test_unserved_paths_are_an_openai_404_in_reverse_mode(
    oproxy: ProxyProcess, method: str, path: str
) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{oproxy.reverse_port}", trust_env=False, timeout=20) as h:
        r = h.request(method, path, json={"model": "tts-1", "input": "x"} if method == "POST" else None)
    assert "not forwarded" in _assert_not_served(r)["message"]


def test_the_sdk_sees_an_unserved_path_as_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="This proxy serves"):
        client.files.list()


def test_api_openai_com_is_answered_by_the_proxy_and_never_contacted(explicit: httpx.Client) -> None:
    err = _assert_not_served(explicit.get("https://api.openai.com/v1/files"))
    assert "api.openai.com" in err["message"]
    with openai.OpenAI(api_key="sk-users-own-openai-key", http_client=explicit, max_retries=0) as c:
        got = c.embeddings.create(model=GEMINI_EMBEDDER, input="via openai.com", encoding_format="float")
        assert got.data[0].embedding == vector("via openai.com")
        text = c.completions.create(model="openai/gpt-4o-mini", prompt="via openai.com").choices[0].text
        assert text == "echo: via openai.com"

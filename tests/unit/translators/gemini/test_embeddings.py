"""translators/gemini/embeddings.py: OpenAI embeddings <-> embedContent / batchEmbedContents."""

from __future__ import annotations

import array
import base64
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from translators.gemini import GeminiFormatError, TranslationError
from translators.gemini.embeddings import embeddings_answer, embeddings_request, to_base64


def _floats(b64: str) -> list[float]:
    """As the openai SDK decodes a base64 embedding (array('f'), machine order: little-endian here)."""
    assert sys.byteorder == "little"
    return array.array("f", base64.b64decode(b64)).tolist()


def test_one_string_is_embed_content() -> None:
    path, body = embeddings_request({"model": "x", "input": "hello"}, "gemini-embedding-001")
    assert path == "/v1beta/models/gemini-embedding-001:embedContent"
    assert body == {"content": {"parts": [{"text": "hello"}]}}


def test_a_list_of_one_string_is_embed_content_too() -> None:
    path, body = embeddings_request({"input": ["hello"], "dimensions": 8}, "models/text-embedding-004")
    assert path == "/v1beta/models/text-embedding-004:embedContent"
    assert body == {"content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 8}


def test_several_strings_are_one_batch_naming_the_model_in_each_request() -> None:
    request = {"input": ["a", "b", "c"], "dimensions": 256, "user": "someone"}
    path, body = embeddings_request(request, "gemini-embedding-001")
    assert path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert body == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": t}]},
                "outputDimensionality": 256,
            }
            for t in "abc"
        ]
    }


def test_tuned_models_and_names_that_try_to_add_path_segments() -> None:
    path, _ = embeddings_request({"input": ["a", "b"]}, "tunedModels/mine")
    assert path == "/v1beta/tunedModels/mine:batchEmbedContents"
    path, _ = embeddings_request({"input": "a"}, "../files/x:get")
    assert path == "/v1beta/models/..%2Ffiles%2Fx%3Aget:embedContent"


@pytest.mark.parametrize(
    ("request_body", "param", "words"),
    [
        ({}, "input", "Missing required parameter"),
        ({"input": []}, "input", "non-empty"),
        ({"input": ""}, "input", "empty strings"),
        ({"input": ["a", ""]}, "input", "empty strings"),
        ({"input": [1, 2, 3]}, "input", "Token arrays"),
        ({"input": [[1, 2], [3]]}, "input", "Token arrays"),
        ({"input": ["a", 1]}, "input", "array of strings"),
        ({"input": {"text": "a"}}, "input", "array of strings"),
        ({"input": "a", "dimensions": 0}, "dimensions", "positive integer"),
        ({"input": "a", "dimensions": "8"}, "dimensions", "positive integer"),
        ({"input": "a", "dimensions": True}, "dimensions", "positive integer"),
        ({"input": "a", "encoding_format": "int8"}, "encoding_format", "'float' or 'base64'"),
    ],
)
def test_unusable_requests_name_the_field(request_body: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(TranslationError) as e:
        embeddings_request(request_body, "gemini-embedding-001")
    assert e.value.param == param
    assert words in e.value.message


def test_one_answer_as_an_openai_list() -> None:
    answer = embeddings_answer({"embedding": {"values": [0.5, -1, 2.25]}}, "m", {"input": "a"})
    assert answer == {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -1, 2.25]}],
        "model": "m",
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
    }


def test_batch_answer_keeps_the_order_and_reads_usage_when_given() -> None:
    data = {
        "embeddings": [{"values": [1.0]}, {"values": [2.0]}],
        "usageMetadata": {"promptTokenCount": 7},
    }
    answer = embeddings_answer(data, "m", {"input": ["a", "b"], "encoding_format": "float"})
    assert [(d["index"], d["embedding"]) for d in answer["data"]] == [(0, [1.0]), (1, [2.0])]
    assert answer["usage"] == {"prompt_tokens": 7, "total_tokens": 7}


def test_base64_is_little_endian_float32_as_openai_sends_it() -> None:
    answer = embeddings_answer(
        {"embedding": {"values": [0.5, -1.0, 3.0]}}, "m", {"input": "a", "encoding_format": "base64"}
    )
    encoded = answer["data"][0]["embedding"]
    assert base64.b64decode(encoded) == bytes.fromhex("0000003f000080bf00004040")
    assert _floats(encoded) == [0.5, -1.0, 3.0]


@given(st.lists(st.floats(width=32, allow_nan=False), max_size=64))
def test_base64_round_trips_any_float32_vector(values: list[float]) -> None:
    assert _floats(to_base64(values)) == values


@pytest.mark.parametrize(
    "data",
    [
        [],
        {},
        {"embedding": {}},
        {"embedding": {"values": "0.1"}},
        {"embedding": {"values": [0.1, "x"]}},
        {"embedding": {"values": [True]}},
        {"embeddings": [{"values": [1.0]}, None]},
    ],
)
def test_answers_that_are_no_embeddings_are_format_errors(data: Any) -> None:
    with pytest.raises(GeminiFormatError):
        embeddings_answer(data, "m", {"input": ["a", "b"]})


def test_a_vector_count_other_than_the_inputs_is_a_format_error() -> None:
    with pytest.raises(GeminiFormatError, match="1 embeddings for 2 inputs"):
        embeddings_answer({"embeddings": [{"values": [1.0]}]}, "m", {"input": ["a", "b"]})


def test_a_value_beyond_float32_cannot_be_base64_encoded() -> None:
    with pytest.raises(GeminiFormatError, match="float32"):
        embeddings_answer(
            {"embedding": {"values": [1e300]}}, "m", {"input": "a", "encoding_format": "base64"}
        )


@given(st.lists(st.text(min_size=1), min_size=1, max_size=20), st.none() | st.integers(1, 3072))
def test_any_texts_reach_gemini_in_order_and_come_back_indexed_in_order(
    texts: list[str], dims: int | None
) -> None:
    request = {"input": texts, "dimensions": dims}
    path, body = embeddings_request(request, "gemini-embedding-001")
    sent = [body] if path.endswith(":embedContent") else body["requests"]
    assert path.endswith(":embedContent") == (len(texts) == 1)
    assert [r["content"]["parts"][0]["text"] for r in sent] == texts
    assert all(r.get("outputDimensionality") == dims for r in sent)
    vectors = [[float(i)] for i in range(len(texts))]
    data = (
        {"embedding": {"values": vectors[0]}}
        if len(texts) == 1
        else {"embeddings": [{"values": v} for v in vectors]}
    )
    answer = embeddings_answer(data, "m", request)
    assert [(d["index"], d["embedding"]) for d in answer["data"]] == list(enumerate(vectors))

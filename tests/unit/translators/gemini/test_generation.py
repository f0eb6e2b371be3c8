"""translators/gemini/generation.py: sampling, response_format, reasoning_effort."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.fake_gemini import validate_request
from tests.unit.translators.gemini.support import translate
from translators.gemini import TranslationError


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
        "seed": 7,  # penalties are dropped: Gemini 2.5 refuses them (test_refusals_generation.py)
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

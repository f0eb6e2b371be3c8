"""Requests Gemini must not refuse: penalties, Gemma's system instruction, Gemma 4's thinking controls."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.fake_gemini import validate_request
from tests.unit.translators.gemini.support import translate
from translators.gemini import TranslationError
from translators.gemini.request import request_notes
from translators.gemini.thinking import thinking_config

SYSTEM = {"role": "system", "content": "Answer in French."}
USER = {"role": "user", "content": "hi"}
PENALTIES = {"presence_penalty": 0.5, "frequency_penalty": -0.25}


@pytest.mark.parametrize(
    "model",
    ["gemini-2.5-flash", "gemini-2.5-pro", "models/gemini-3-pro-preview", "gemma-3-27b-it",
     "gemini-2.0-flash-thinking-exp-01-21", "gemini-1.5-flash"],
)  # fmt: skip
def test_penalties_are_left_out_for_models_that_refuse_them(model: str) -> None:
    """https://github.com/google-gemini/cookbook/blob/main/quickstarts/New_in_002.ipynb (Google's notebook
    for these options): the 2.5 series does not support presence_penalty / frequency_penalty ("Unsupported
    parameters ... replaced by the model's inherent handling of repetition"); the API answers 400 "Penalty
    is not enabled for models/...". They are dropped, and the flow comment says so."""
    out = translate([USER], model=model, temperature=0.2, **PENALTIES)
    assert out["generationConfig"] == {"temperature": 0.2}
    body = {"messages": [USER], **PENALTIES}
    assert request_notes(body, model) == [
        f"presence_penalty dropped ({model} refuses penalties)",
        f"frequency_penalty dropped ({model} refuses penalties)",
    ]


@pytest.mark.parametrize("model", ["gemini-2.0-flash", "gemini-2.0-flash-001", "gemini-1.5-pro-002"])
def test_penalties_reach_models_that_take_them(model: str) -> None:
    """https://github.com/google-gemini/cookbook/blob/main/quickstarts/New_in_002.ipynb: presence and
    frequency penalties arrived with the 1.5 "-002" models and were shown on gemini-2.0-flash-001;
    https://ai.google.dev/api/generate-content#generationconfig names them presencePenalty and
    frequencyPenalty."""
    out = translate([USER], model=model, **PENALTIES)
    assert out["generationConfig"] == {"presencePenalty": 0.5, "frequencyPenalty": -0.25}
    assert request_notes({"messages": [USER], **PENALTIES}, model) == []


def test_zero_penalties_are_the_default_and_never_sent() -> None:
    """https://ai.google.dev/api/generate-content#generationconfig: both penalties default to 0 (none)."""
    for model in ("gemini-2.5-flash", "gemini-2.0-flash"):
        out = translate([USER], model=model, presence_penalty=0, frequency_penalty=0.0)
        assert "generationConfig" not in out
        assert request_notes({"messages": [USER], "presence_penalty": 0}, model) == []


def test_a_penalty_of_the_wrong_type_is_still_the_clients_error() -> None:
    """A dropped parameter is still checked: a string is a 400 whatever the model (as OpenAI answers)."""
    with pytest.raises(TranslationError) as exc:
        translate([USER], model="gemini-2.5-flash", presence_penalty="lots")
    assert exc.value.param == "presence_penalty"


@pytest.mark.parametrize("model", ["gemma-3-27b-it", "gemma-3n-e4b-it", "models/gemma-3-1b-it"])
def test_gemma_3_reads_the_system_text_in_the_first_user_turn(model: str) -> None:
    """https://ai.google.dev/gemma/docs/core/prompt-structure: Gemma 3's instruction-tuned models have two
    roles, user and model; system instructions go at the start of the first user turn (the Gemini API
    answers a systemInstruction with 400 "Developer instruction is not enabled"). Google's ADK does the
    same for Gemma 3 (google/adk-python, src/google/adk/models/gemma_llm.py)."""
    dev = {"role": "developer", "content": "Be brief."}
    out = translate([SYSTEM, dev, USER, {"role": "assistant", "content": "salut"}, USER], model=model)
    assert "systemInstruction" not in out
    assert out["contents"][0] == {
        "role": "user",
        "parts": [{"text": "Answer in French.\n\nBe brief."}, {"text": "hi"}],
    }
    assert [c["role"] for c in out["contents"]] == ["user", "model", "user"]
    validate_request(out)
    assert request_notes({"messages": [SYSTEM, USER]}, model) == [
        f"system prompt moved into the first user turn ({model} takes no system instruction)"
    ]


def test_gemma_3_history_that_opens_with_the_model_gets_a_user_turn_first() -> None:
    """https://ai.google.dev/gemma/docs/core/prompt-structure: the system text precedes the conversation;
    when the history opens with a model turn, it becomes a user turn of its own before it."""
    out = translate([SYSTEM, {"role": "assistant", "content": "Bonjour"}, USER], model="gemma-3-12b-it")
    assert out["contents"][0] == {"role": "user", "parts": [{"text": "Answer in French."}]}
    assert [c["role"] for c in out["contents"]] == ["user", "model", "user"]


@pytest.mark.parametrize("model", ["gemma-4-31b-it", "gemma-4-26b-a4b-it", "gemini-2.5-flash"])
def test_gemma_4_and_gemini_keep_the_system_instruction(model: str) -> None:
    """Gemma 4 has a system role ("Compared to Gemma 3, the models use standard system, assistant, and user
    roles": the Gemma 4 model card, https://ai.google.dev/gemma/docs/core/model_card_4); Google's ADK sends
    Gemma 4 through its plain Gemini class with native system instructions (gemma_llm.py, see above)."""
    out = translate([SYSTEM, USER], model=model)
    assert out["systemInstruction"] == {"parts": [{"text": "Answer in French."}]}
    assert out["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert request_notes({"messages": [SYSTEM, USER]}, model) == []


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        ({"reasoning_effort": "high"}, {"thinkingLevel": "high", "includeThoughts": True}),
        ({"reasoning_effort": "medium"}, {"thinkingLevel": "high", "includeThoughts": True}),
        ({"reasoning_effort": "low"}, {"thinkingLevel": "minimal", "includeThoughts": True}),
        ({"reasoning_effort": "none"}, {"thinkingLevel": "minimal", "includeThoughts": False}),
        ({"reasoning": {"max_tokens": 20000}}, {"thinkingLevel": "high", "includeThoughts": True}),
        ({"reasoning": {"max_tokens": 100, "exclude": True}},
         {"thinkingLevel": "minimal", "includeThoughts": False}),
        ({"reasoning": {"enabled": True}}, {"includeThoughts": True}),
    ],
)  # fmt: skip
def test_gemma_4_thinks_at_two_levels_and_takes_no_budget(asked: dict[str, Any], expected: Any) -> None:
    """https://ai.google.dev/gemini-api/docs/thinking: thinkingLevel controls models that think by level
    and thinkingBudget the 2.5 series only. Gemma 4 on the Gemini API takes the levels "minimal" and
    "high" and answers a budget with 400 "Thinking budget is not supported for this model"."""
    config = thinking_config({"messages": [USER], **asked}, "gemma-4-31b-it")
    assert config == expected
    out = translate([USER], model="gemma-4-31b-it", **asked)
    assert "thinkingBudget" not in out["generationConfig"]["thinkingConfig"]
    validate_request(out)


@pytest.mark.parametrize("model", ["gemma-3-27b-it", "gemma-3n-e2b-it", "gemma-7b-it"])
def test_gemma_before_4_gets_no_thinking_config(model: str) -> None:
    """https://ai.google.dev/gemini-api/docs/thinking lists the models that think; Gemma 3 is not one."""
    assert thinking_config({"reasoning_effort": "high"}, model) is None

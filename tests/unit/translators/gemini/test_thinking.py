"""translators/gemini/thinking.py: the `reasoning` object and reasoning_effort -> thinkingConfig."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fakes.fake_gemini import validate_request
from tests.unit.translators.gemini.support import FAST, translate
from translators.gemini import TranslationError
from translators.gemini.thinking import BUDGETS

USER = [{"role": "user", "content": "x"}]
# (smallest budget that thinks, largest, whether 0 switches thinking off), from Google's model pages
RANGES = {
    "gemini-2.5-pro": (128, 32768, False),
    "gemini-2.5-flash": (1, 24576, True),
    "gemini-2.5-flash-lite": (512, 24576, True),
}


def thinking(model: str, **params: Any) -> Any:
    out = translate(USER, model=model, **params)
    validate_request(out)  # never both thinkingBudget and thinkingLevel, no unknown field
    return out.get("generationConfig", {}).get("thinkingConfig")


@pytest.mark.parametrize(
    ("model", "reasoning", "expected"),
    [
        ("gemini-2.5-flash", {"max_tokens": 2000}, {"thinkingBudget": 2000, "includeThoughts": True}),
        ("gemini-2.5-flash", {"max_tokens": 99999}, {"thinkingBudget": 24576, "includeThoughts": True}),
        ("gemini-2.5-flash", {"max_tokens": 0}, {"thinkingBudget": 0, "includeThoughts": False}),
        ("gemini-2.5-pro", {"max_tokens": 99999}, {"thinkingBudget": 32768, "includeThoughts": True}),
        ("gemini-2.5-pro", {"max_tokens": 10}, {"thinkingBudget": 128, "includeThoughts": True}),
        ("gemini-2.5-pro", {"enabled": False}, {"thinkingBudget": 128, "includeThoughts": False}),
        ("gemini-2.5-flash", {"enabled": False}, {"thinkingBudget": 0, "includeThoughts": False}),
        ("gemini-2.5-flash-lite", {"max_tokens": 100}, {"thinkingBudget": 512, "includeThoughts": True}),
        ("gemini-2.5-flash-lite", {"enabled": False}, {"thinkingBudget": 0, "includeThoughts": False}),
        ("models/gemini-2.5-flash", {"effort": "medium"}, {"thinkingBudget": 8192, "includeThoughts": True}),
        (
            "gemini-2.5-flash",
            {"max_tokens": 4096, "exclude": True},
            {"thinkingBudget": 4096, "includeThoughts": False},
        ),
        (
            "gemini-2.5-flash",
            {"effort": "high", "exclude": True},
            {"thinkingBudget": 24576, "includeThoughts": False},
        ),
        ("gemini-2.5-flash", {"enabled": True}, {"includeThoughts": True}),  # the model's own budget
        ("gemini-2.5-flash", {"exclude": True}, {"includeThoughts": False}),
        ("gemini-3-pro-preview", {"max_tokens": 1024}, {"thinkingLevel": "low", "includeThoughts": True}),
        ("gemini-3-pro-preview", {"max_tokens": 16000}, {"thinkingLevel": "high", "includeThoughts": True}),
        ("gemini-3-pro-preview", {"enabled": False}, {"thinkingLevel": "low", "includeThoughts": False}),
        (
            "gemini-3-flash-preview",
            {"max_tokens": 100},
            {"thinkingLevel": "minimal", "includeThoughts": True},
        ),
        (
            "gemini-3-flash-preview",
            {"max_tokens": 4096},
            {"thinkingLevel": "medium", "includeThoughts": True},
        ),
        (
            "gemini-3-flash-preview",
            {"enabled": False},
            {"thinkingLevel": "minimal", "includeThoughts": False},
        ),
        ("gemini-3-flash-preview", {"effort": "xhigh"}, {"thinkingLevel": "high", "includeThoughts": True}),
        ("gemini-2.0-flash", {"max_tokens": 4096}, None),
        ("gemma-3-27b-it", {"effort": "high"}, None),
    ],
)
def test_reasoning_object_per_model_family(model: str, reasoning: dict[str, Any], expected: Any) -> None:
    assert thinking(model, reasoning=reasoning) == expected


@given(
    model=st.sampled_from(sorted(RANGES)),
    budget=st.integers(min_value=0, max_value=10**7),
    exclude=st.booleans(),
)
@FAST
def test_any_budget_lands_in_the_model_range(model: str, budget: int, exclude: bool) -> None:
    low, high, can_stop = RANGES[model]
    got = thinking(model, reasoning={"max_tokens": budget, "exclude": exclude})
    sent = got["thinkingBudget"]
    if budget == 0:
        assert sent == (0 if can_stop else low)
    else:
        assert sent == min(max(budget, low), high)
    assert got["includeThoughts"] is (not exclude and budget > 0 and sent > 0)


@pytest.mark.parametrize("model", ["gemini-3-pro-preview", "gemini-3-flash-preview"])
@pytest.mark.parametrize("effort", sorted(BUDGETS))
def test_gemini3_level_of_an_effort_budget_is_that_effort_level(model: str, effort: str) -> None:
    by_effort = thinking(model, reasoning={"effort": effort})
    by_budget = thinking(model, reasoning={"max_tokens": BUDGETS[effort]})
    assert by_budget["thinkingLevel"] == by_effort["thinkingLevel"]
    assert "thinkingBudget" not in by_budget


def test_reasoning_wins_over_reasoning_effort_which_is_still_checked() -> None:
    got = thinking("gemini-2.5-flash", reasoning={"max_tokens": 300}, reasoning_effort="high")
    assert got == {"thinkingBudget": 300, "includeThoughts": True}
    got = thinking("gemini-2.5-flash", reasoning={"unknown": 1}, reasoning_effort="low")
    assert got == {"thinkingBudget": 1024, "includeThoughts": True}
    with pytest.raises(TranslationError) as exc:
        translate(USER, reasoning={"max_tokens": 300}, reasoning_effort="maximum")
    assert exc.value.param == "reasoning_effort"


@pytest.mark.parametrize(
    "reasoning",
    [{}, {"max_tokens": "lots"}, {"max_tokens": -5}, {"max_tokens": True}, {"effort": "max"}, "high", None],
)
def test_unusable_reasoning_is_ignored_as_before(reasoning: Any) -> None:
    assert thinking("gemini-2.5-flash", reasoning=reasoning) is None

"""reasoning_effort and the internal `reasoning` object -> Gemini thinkingConfig, within each model's range.

Gemini 2.5 takes a token budget (Pro 128..32768 and cannot stop thinking; Flash 0..24576; Flash-Lite
512..24576 or 0 for off); Gemini 3 takes a level instead. Exactly one of thinkingLevel / thinkingBudget
is ever sent: Gemini answers 400 to both. Gemma 4 thinks too, with two levels (minimal, high) and no
budget ("Thinking budget is not supported for this model"); older Gemma and Gemini 2.0 / 1.x get no
thinkingConfig at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from translators.gemini.exceptions import TranslationError
from translators.gemini.models import bare_model, gemma_generation

log = logging.getLogger(__name__)

BUDGETS = {"none": 0, "minimal": 128, "low": 1024, "medium": 8192, "high": 24576}
_LEVELS_FLASH = {"none": "minimal", "minimal": "minimal", "low": "low", "medium": "medium", "high": "high"}
_LEVELS = {"none": "low", "minimal": "low", "low": "low", "medium": "high", "high": "high"}
_LEVELS_GEMMA = {"none": "minimal", "minimal": "minimal", "low": "minimal", "medium": "high", "high": "high"}


@dataclass(frozen=True, slots=True)
class Thinking:
    """What the client asked for, whichever field it used; neither effort nor budget: the model's default."""

    effort: str | None = None  # a key of BUDGETS
    budget: int | None = None  # tokens; 0 asks for no thinking
    include: bool = True  # return thought summaries


@dataclass(frozen=True, slots=True)
class _Range:
    low: int  # the smallest budget that thinks
    high: int
    can_stop: bool  # a budget of 0 switches thinking off


def thinking_config(body: dict[str, Any], model: str) -> dict[str, Any] | None:
    """thinkingConfig for the request, or None. `reasoning` wins over `reasoning_effort`, which is still
    checked as before (a bad value is a 400); a malformed `reasoning` is ignored, as it always was."""
    effort = body.get("reasoning_effort")
    asked = _from_effort(effort) if effort is not None else None
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict):
        asked = _from_reasoning(reasoning) or asked
    if asked is None:
        return None
    bare = bare_model(model)
    if (gemma_generation(model) or 0) >= 4:
        return _level_config(asked, _LEVELS_GEMMA)
    if bare.startswith(("gemini-1", "gemini-2.0", "gemma")):
        log.debug("dropping the reasoning controls: %s does not think", model)
        return None
    if bare.startswith("gemini-3"):
        return _level_config(asked, _LEVELS_FLASH if "flash" in bare else _LEVELS)
    return _budget_config(asked, bare)


def _from_effort(effort: Any) -> Thinking:
    level = _effort_name(effort)
    if level is None:
        raise TranslationError(
            f"reasoning_effort {effort!r} is not one of {', '.join(BUDGETS)}", param="reasoning_effort"
        )
    return Thinking(effort=level, include=level != "none")


def _effort_name(effort: Any) -> str | None:
    level = effort.lower() if isinstance(effort, str) else None
    level = "high" if level == "xhigh" else level
    return level if level in BUDGETS else None


def _from_reasoning(reasoning: dict[str, Any]) -> Thinking | None:
    """OpenRouter's reasoning object: max_tokens, effort, enabled, exclude."""
    include = reasoning.get("exclude") is not True
    if reasoning.get("enabled") is False:
        return Thinking(effort="none", include=False)
    budget = reasoning.get("max_tokens")
    if isinstance(budget, int) and not isinstance(budget, bool) and budget >= 0:
        return Thinking(budget=budget, include=include and budget > 0)
    effort = _effort_name(reasoning.get("effort"))
    if effort is not None:
        return Thinking(effort=effort, include=include and effort != "none")
    if reasoning.get("enabled") is True or "exclude" in reasoning:
        return Thinking(include=include)
    log.debug("ignoring a reasoning object without a usable control: %s", sorted(reasoning))
    return None


def _level_config(asked: Thinking, table: dict[str, str]) -> dict[str, Any]:
    effort = asked.effort if asked.effort is not None else _effort_for_budget(asked.budget)
    if effort is None:
        return {"includeThoughts": asked.include}
    return {"thinkingLevel": table[effort], "includeThoughts": asked.include}


def _effort_for_budget(budget: int | None) -> str | None:
    """The effort whose budget (see BUDGETS) is the smallest that covers `budget`."""
    if budget is None:
        return None
    return next((name for name, limit in BUDGETS.items() if budget <= limit), "high")


def _budget_config(asked: Thinking, bare: str) -> dict[str, Any]:
    wanted = asked.budget if asked.budget is not None else BUDGETS.get(asked.effort or "")
    if wanted is None:
        return {"includeThoughts": asked.include}
    budget = _clamp(wanted, _range(bare))
    return {"thinkingBudget": budget, "includeThoughts": asked.include and budget > 0}


def _range(bare: str) -> _Range:
    if "flash-lite" in bare:
        return _Range(512, 24576, True)
    if "pro" in bare:
        return _Range(128, 32768, False)
    return _Range(1, 24576, True)


def _clamp(budget: int, limits: _Range) -> int:
    if budget <= 0:
        return 0 if limits.can_stop else limits.low
    return min(max(budget, limits.low), limits.high)

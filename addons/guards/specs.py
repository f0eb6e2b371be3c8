"""The guards' settings, declared once (settings.py reads them, as it reads the backends' own): data only."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from addons.setting_spec import SettingSpec

GUARDS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "loop_guard",
        "LLM_LOOP_GUARD",
        "Loop guards: cut streamed output that repeats itself; steer, then refuse, an agent repeating "
        "the same tool call with the same result (per session: !/set(loop-guard=off)).",
        bool,
        True,
    ),
    SettingSpec(
        "repetition_repeats",
        "LLM_REPETITION_REPEATS",
        "Repetition guard: times a block must repeat in a row.",
        Annotated[int, Field(ge=2, le=1000)],
        5,
    ),
    SettingSpec(
        "repetition_min_chars",
        "LLM_REPETITION_MIN_CHARS",
        "Repetition guard: characters the repeated run must also reach.",
        Annotated[int, Field(ge=200, le=1_000_000)],
        3000,
    ),
    SettingSpec(
        "repetition_window",
        "LLM_REPETITION_WINDOW",
        "Repetition guard: characters looked back (blocks up to window / repeats long are found).",
        Annotated[int, Field(ge=1000, le=1_000_000)],
        16000,
    ),
    SettingSpec(
        "tool_loop_repeats",
        "LLM_TOOL_LOOP_REPEATS",
        "Tool-call loop guard: identical calls with identical results in a row before the steering note "
        "(one more is refused).",
        Annotated[int, Field(ge=2, le=1000)],
        7,
    ),
    SettingSpec(
        "tool_call_repair",
        "LLM_TOOL_CALL_REPAIR",
        "Repair tool-call arguments that are not valid JSON (kept only if they then fit the tool's schema).",
        bool,
        True,
    ),
)

"""A budget's limit: an amount in USD or in tokens. Session budgets come as text (`!/set(budget=2.50)`,
`budget=200k`); project budgets as a settings mapping of project name to `{daily: USD, monthly: USD}`."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from addons.setting_spec import named_table

type Unit = Literal["usd", "tokens"]
MAX_USD = 1_000_000.0
MAX_TOKENS = 10**12
MIN_BARE_TOKENS = 1000  # a bare integer below this is ambiguous: "5" is more likely $5 than 5 tokens
OFF_WORDS = frozenset({"off", "none"})
MAX_PROJECT = 256  # as long as `!/set(project=...)` may make one

_NUM = r"\d+(?:\.\d+)?|\.\d+"
_USD = re.compile(rf"\$\s*(?P<a>{_NUM})|(?P<b>{_NUM})\s*(?:\$|usd)|(?P<c>\d+\.\d*|\.\d+)")
_TOKENS = re.compile(rf"(?P<n>{_NUM})\s*(?P<mult>[km])?\s*(?P<word>tokens?|tok)?")
_MULTIPLIERS = {None: 1, "k": 1000, "m": 1_000_000}


@dataclass(frozen=True, slots=True)
class Limit:
    amount: float  # USD, or a whole number of tokens
    unit: Unit

    def text(self) -> str:
        """The canonical form, as a session keeps it; parse_limit reads it back unchanged."""
        if self.unit == "tokens":
            return f"{int(self.amount)} tokens"
        return "$" + _fixed(self.amount)

    def show(self, amount: float) -> str:
        """An amount in this limit's unit, for people."""
        return tokens_text(amount) if self.unit == "tokens" else usd_text(amount)


def parse_limit(text: str) -> Limit | None:
    """`2.50`, `$2.50`, `2.50 usd` (USD); `200k`, `1.5m`, `50000`, `80000 tokens` (tokens); `off`/`none`:
    None. ValueError says what is wrong and what would be valid."""
    raw = text.strip().lower()
    if raw in OFF_WORDS:
        return None
    if len(raw) > 32:
        raise ValueError(f"budget '{text[:32]}…' is too long: give an amount such as 2.50 or 200k")
    if m := _USD.fullmatch(raw):
        usd = round(float(m["a"] or m["b"] or m["c"]), 6)
        if not 0 < usd <= MAX_USD:
            raise ValueError(f"budget must be more than $0 and at most ${MAX_USD:,.0f}, not '{text}'")
        return Limit(usd, "usd")
    if m := _TOKENS.fullmatch(raw):
        return Limit(_tokens(text, m), "tokens")
    raise ValueError(
        f"budget '{text}' is neither USD (2.50, $2.50) nor tokens (200k, 1.5m, 50000); "
        "off or unset(budget) removes it"
    )


def _tokens(text: str, m: re.Match[str]) -> int:
    value = float(m["n"]) * _MULTIPLIERS[m["mult"]]
    if value != int(value):
        raise ValueError(f"budget '{text}' is not a whole number of tokens")
    if not m["mult"] and not m["word"] and value < MIN_BARE_TOKENS:
        n = m["n"]
        raise ValueError(f"budget '{text}' is ambiguous: write ${n} (or {n}.00) for USD, {n}k for tokens")
    if not 0 < value <= MAX_TOKENS:
        raise ValueError(f"budget must be more than 0 and at most {MAX_TOKENS:,} tokens, not '{text}'")
    return int(value)


def usd_text(amount: float) -> str:
    """Cents; below a cent two significant digits ($0.0042, $0.000031), never a misleading $0.00."""
    if abs(amount) >= 0.01 or amount == 0:
        return f"${amount:,.2f}"
    places = min(12, 1 - math.floor(math.log10(abs(amount))))
    return f"${amount:.{places}f}".rstrip("0")


def tokens_text(amount: float) -> str:
    return f"{int(amount):,} tokens"


def _fixed(amount: float, places: int = 6) -> str:
    """At least two decimals, at most `places`, no trailing zeros beyond the second."""
    whole, _, fraction = f"{amount:.{places}f}".partition(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"


def _usd_value(v: Any) -> Any:
    return v.strip().removeprefix("$").strip() if isinstance(v, str) else v


_Usd = Annotated[float, BeforeValidator(_usd_value), Field(gt=0, le=MAX_USD, allow_inf_nan=False)]


class ProjectBudget(BaseModel):
    """One project's limits in USD, counted per UTC day and per UTC month."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    daily: _Usd | None = None
    monthly: _Usd | None = None

    @model_validator(mode="after")
    def _some_limit(self) -> ProjectBudget:
        if self.daily is None and self.monthly is None:
            raise ValueError("give daily and/or monthly, in USD")
        return self


def _budget_table(v: Any) -> dict[str, ProjectBudget]:
    return named_table(v, ProjectBudget, "project", "{daily: USD, monthly: USD}", MAX_PROJECT)


# `budgets:` in YAML; JSON in an option or the environment.
ProjectBudgets = Annotated[dict[str, ProjectBudget], BeforeValidator(_budget_table)]

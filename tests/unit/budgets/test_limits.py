"""Budget limits as users write them: `!/set(budget=...)` text, and the `budgets:` setting."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from addons.budgets.limits import MAX_TOKENS, MAX_USD, Limit, parse_limit, tokens_text, usd_text
from addons.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("2.50", Limit(2.5, "usd")),
        ("$2.50", Limit(2.5, "usd")),
        ("$ 3", Limit(3.0, "usd")),
        ("3$", Limit(3.0, "usd")),
        ("10 USD", Limit(10.0, "usd")),
        (".5", Limit(0.5, "usd")),
        ("2.", Limit(2.0, "usd")),
        ("200k", Limit(200_000, "tokens")),
        ("1.5m", Limit(1_500_000, "tokens")),
        ("1.5M", Limit(1_500_000, "tokens")),
        ("50000", Limit(50_000, "tokens")),
        ("80000 tokens", Limit(80_000, "tokens")),
        ("2k tokens", Limit(2000, "tokens")),
        ("12 tokens", Limit(12, "tokens")),  # small, but said in so many words
        ("  $7.25  ", Limit(7.25, "usd")),
    ],
)
def test_budget_text_means_usd_or_tokens(text: str, limit: Limit) -> None:
    assert parse_limit(text) == limit


@pytest.mark.parametrize("text", ["off", "OFF", "none", " None "])
def test_off_and_none_remove_the_budget(text: str) -> None:
    assert parse_limit(text) is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("5", "ambiguous: write $5 (or 5.00) for USD, 5k for tokens"),
        ("999", "ambiguous"),
        ("0.00", "more than $0"),
        ("$0", "more than $0"),
        ("0k", "more than 0"),
        ("$2000000", "at most $1,000,000"),
        ("2000000m", "at most 1,000,000,000,000 tokens"),
        ("1.5 tokens", "not a whole number of tokens"),
        ("1.0005k", "not a whole number of tokens"),
        ("-1", "neither USD"),
        ("1e3", "neither USD"),
        ("nan", "neither USD"),
        ("inf", "neither USD"),
        ("two dollars", "neither USD"),
        ("", "neither USD"),
        ("$2.50 usd", "neither USD"),
        ("9" * 40, "too long"),
    ],
)
def test_what_is_not_a_budget_is_said_clearly(text: str, says: str) -> None:
    with pytest.raises(ValueError, match="budget") as e:
        parse_limit(text)
    assert says in str(e.value)


@given(st.text(max_size=40))
@settings(max_examples=500, deadline=None)
def test_any_text_is_a_limit_none_or_a_clear_error(text: str) -> None:
    try:
        limit = parse_limit(text)
    except ValueError as e:
        assert "budget" in str(e)
        return
    if limit is not None:
        assert limit.amount > 0
        assert limit.amount <= (MAX_USD if limit.unit == "usd" else MAX_TOKENS)
        assert parse_limit(limit.text()) == limit


@given(st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(MAX_USD), places=6))
@settings(max_examples=300, deadline=None)
def test_usd_amounts_read_back_from_their_canonical_text(amount: Decimal) -> None:
    for text in (str(amount), f"${amount}", f"{amount} usd"):
        if "." not in text and not text.startswith("$") and "usd" not in text:
            continue  # a bare integer means tokens
        limit = parse_limit(text)
        assert limit == Limit(round(float(amount), 6), "usd")
        assert limit is not None and parse_limit(limit.text()) == limit


@given(st.integers(min_value=1, max_value=MAX_TOKENS // 1_000_000), st.sampled_from(["", "k", "m"]))
@settings(max_examples=300, deadline=None)
def test_token_amounts_with_a_suffix_or_large_enough_are_tokens(n: int, suffix: str) -> None:
    factor = {"": 1, "k": 1000, "m": 1_000_000}[suffix]
    if not suffix and n < 1000:
        with pytest.raises(ValueError, match="ambiguous"):
            parse_limit(str(n))
        return
    limit = parse_limit(f"{n}{suffix}")
    assert limit == Limit(n * factor, "tokens")
    assert limit is not None and parse_limit(limit.text()) == limit


@pytest.mark.parametrize(
    ("amount", "text"),
    [(0, "$0.00"), (0.0042, "$0.0042"), (0.00005, "$0.00005"), (0.0000306, "$0.000031"), (0.5, "$0.50"),
     (0.123456, "$0.12"), (2.5, "$2.50"), (1234.5, "$1,234.50"), (0.01, "$0.01")],
)  # fmt: skip
def test_dollars_show_cents_and_fractions_of_a_cent_stay_visible(amount: float, text: str) -> None:
    assert usd_text(amount) == text


def test_tokens_show_with_thousands_separators() -> None:
    assert tokens_text(200_000) == "200,000 tokens"


def test_project_budgets_from_the_settings_file() -> None:
    yaml = {"budgets": {"acme": {"daily": 5, "monthly": "$100"}, "solo": {"monthly": 2.5}}}
    s = load_settings({}, {}, yaml)
    assert s.budgets["acme"].daily == 5.0 and s.budgets["acme"].monthly == 100.0
    assert s.budgets["solo"].daily is None and s.budgets["solo"].monthly == 2.5


def test_project_budgets_from_the_environment_and_set_as_json() -> None:
    text = json.dumps({"acme": {"daily": 1.25}})
    assert load_settings({}, {"LLM_BUDGETS": text}, {}).budgets["acme"].daily == 1.25
    assert load_settings({"llm_budgets": text}, {}, {}).budgets["acme"].daily == 1.25


@pytest.mark.parametrize(
    ("budgets", "says"),
    [
        ({"acme": {"daily": -1}}, "project 'acme': daily: Input should be greater than 0"),
        ({"acme": {"daily": 0}}, "project 'acme': daily"),
        ({"acme": {"weekly": 5}}, "project 'acme': weekly: Extra inputs are not permitted"),
        ({"acme": {}}, "project 'acme'"),
        ({"acme": {"monthly": "lots"}}, "project 'acme': monthly"),
        ({"acme": 5}, "project 'acme'"),
        ({"": {"daily": 1}}, "project names must be text"),
        (["acme"], "must be a mapping of project name"),
    ],
)
def test_a_bad_project_budget_stops_start_up_naming_the_project_and_field(budgets: object, says: str) -> None:
    with pytest.raises(SettingsError) as e:
        load_settings({}, {}, {"budgets": budgets})
    assert says in str(e.value) and "budgets" in str(e.value)


def test_project_budgets_that_are_not_json_in_the_environment_are_refused() -> None:
    with pytest.raises(SettingsError, match=r"LLM_BUDGETS.*JSON object"):
        load_settings({}, {"LLM_BUDGETS": "acme: {daily: 1"}, {})

"""What a call costs: the provider's own figure, else the price table (tiers, cached input, overrides),
else unknown; usage read from both backends' answers; the prices: setting and its errors."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from addons.backends.prices import DEFAULT_PRICES, PRICES_READ, PRICES_SOURCE
from addons.records import Usage
from addons.setting_spec import LongPrompt, Price
from addons.settings import SettingsError, load_settings
from addons.usage.pricing import PriceTable, cost_of, priced, reported_cost
from tests.fakes.fake_openrouter import FakeUsage, usage_object
from translators.gemini.response import usage_from_metadata

TABLE = PriceTable(DEFAULT_PRICES, {})
M = 1_000_000


def test_flat_prices_per_million_tokens() -> None:
    price = Price(input=0.30, output=2.50)
    assert priced(price, Usage(1_000_000, 0)) == pytest.approx(0.30)
    assert priced(price, Usage(2000, 500)) == pytest.approx((2000 * 0.30 + 500 * 2.50) / M)


def test_cached_tokens_at_the_cached_price_or_else_at_the_input_price() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=100, cached_tokens=800)
    with_cache = Price(input=1.0, output=10.0, cached_input=0.1)
    assert priced(with_cache, usage) == pytest.approx((200 * 1.0 + 800 * 0.1 + 100 * 10.0) / M)
    without = Price(input=1.0, output=10.0)
    assert priced(without, usage) == pytest.approx((1000 * 1.0 + 100 * 10.0) / M)
    # A provider counting more cached tokens than prompt tokens bills no negative fresh prompt.
    assert priced(with_cache, Usage(10, 0, cached_tokens=50)) == pytest.approx(10 * 0.1 / M)


def test_reasoning_tokens_are_billed_as_output() -> None:
    # OpenAI's convention (which the Gemini translation follows): reasoning is part of completion_tokens.
    thinking = Usage(prompt_tokens=100, completion_tokens=1100, reasoning_tokens=1000)
    assert priced(Price(input=0.0, output=2.5), thinking) == pytest.approx(1100 * 2.5 / M)


def test_long_prompts_bill_the_whole_call_at_the_higher_tier() -> None:
    pro = DEFAULT_PRICES["gemini-2.5-pro"]
    at_limit = Usage(prompt_tokens=200_000, completion_tokens=1000, cached_tokens=100_000)
    assert priced(pro, at_limit) == pytest.approx((100_000 * 1.25 + 100_000 * 0.125 + 1000 * 10.0) / M)
    over = Usage(prompt_tokens=200_001, completion_tokens=1000, cached_tokens=100_000)
    assert priced(pro, over) == pytest.approx((100_001 * 2.5 + 100_000 * 0.25 + 1000 * 15.0) / M)
    # A long-prompt tier without its own cached price bills cached tokens at its input price.
    tier = Price(input=1, output=2, cached_input=0.1, long_prompt=LongPrompt(above=10, input=3, output=4))
    assert priced(tier, Usage(20, 1, cached_tokens=5)) == pytest.approx((20 * 3 + 1 * 4) / M)


def test_unknown_models_and_unreported_tokens_cost_unknown_never_zero() -> None:
    assert TABLE.cost("gemini", "gemini-9-imaginary", Usage(10, 10)) is None
    assert TABLE.cost("openrouter", "openai/gpt-4o", Usage(10, 10)) is None
    assert TABLE.cost("gemini", None, Usage(10, 10)) is None
    # Priced model, but the answer counted nothing (Gemini's embeddings, a stream cut before its usage).
    assert TABLE.cost("gemini", "gemini-embedding-001", Usage()) is None
    assert TABLE.cost("gemini", "gemini-2.5-flash", Usage(10, 0)) == pytest.approx(10 * 0.30 / M)


def test_overrides_win_and_a_backend_qualified_entry_beats_a_plain_one() -> None:
    table = PriceTable(
        DEFAULT_PRICES,
        {
            "gemini-2.5-flash": Price(input=1.0, output=1.0),
            "openai/gpt-4o": Price(input=2.5, output=10.0),
            "gemini:gemini-2.5-pro": Price(input=9.0, output=9.0),
        },
    )
    assert table.cost("gemini", "gemini-2.5-flash", Usage(M, 0)) == pytest.approx(1.0)
    assert table.cost("openrouter", "openai/gpt-4o", Usage(0, M)) == pytest.approx(10.0)
    assert table.cost("gemini", "gemini-2.5-pro", Usage(M, 0)) == pytest.approx(9.0)
    assert table.cost("other", "gemini-2.5-pro", Usage(100_000, 0)) == pytest.approx(0.125)  # shipped


def test_the_shipped_table_is_dated_and_sourced() -> None:
    assert PRICES_SOURCE == "https://ai.google.dev/gemini-api/docs/pricing"
    assert len(PRICES_READ) == 10 and PRICES_READ[4] == "-"
    assert all(p.output >= p.input or p.output == 0 for p in DEFAULT_PRICES.values())


def test_openrouters_reported_cost_wins_over_the_table() -> None:
    asked = usage_object({"usage": {"include": True}}, FakeUsage(prompt=100, completion=20, cost=0.0042))
    tokens = Usage.from_openai(asked)
    assert tokens is not None
    table = PriceTable({}, {"openai/gpt-4o": Price(input=100.0, output=100.0)})
    assert cost_of(asked, tokens, "openrouter", "openai/gpt-4o", table) == pytest.approx(0.0042)
    # Not asked for (a proxy of an older version, a client's own request): no cost, so the table decides.
    plain = usage_object({}, FakeUsage(prompt=100, completion=20, cost=0.0042))
    assert cost_of(plain, tokens, "openrouter", "openai/gpt-4o", table) == pytest.approx(120 * 100.0 / M)
    assert cost_of(plain, tokens, "openrouter", "unpriced/model", table) is None


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"cost": 0.5}, 0.5),
        ({"cost": 0}, 0.0),  # a free model costs nothing, knowingly
        ({"cost": 0.5, "is_byok": True, "cost_details": {"upstream_inference_cost": 2.0}}, 2.5),
        ({"cost": 0.5, "is_byok": False, "cost_details": {"upstream_inference_cost": 2.0}}, 0.5),
        ({"cost": -1}, None),
        ({"cost": True}, None),
        ({"cost": "0.5"}, None),
        ({"cost": math.nan}, None),
        ({"cost": math.inf}, None),
        ({}, None),
        (None, None),
        ([1], None),
    ],
)
def test_reported_cost(usage: Any, expected: float | None) -> None:
    assert reported_cost(usage) == expected


def test_usage_from_openrouters_answer() -> None:
    raw = usage_object(
        {"usage": {"include": True}}, FakeUsage(prompt=194, completion=30, cached=100, reasoning=12)
    )
    assert Usage.from_openai(raw) == Usage(194, 30, 100, 12)
    assert Usage.from_openai(usage_object({}, FakeUsage(prompt=7, completion=5))) == Usage(7, 5)


def test_usage_from_geminis_answer() -> None:
    meta = {
        "promptTokenCount": 1200, "candidatesTokenCount": 40, "thoughtsTokenCount": 300,
        "cachedContentTokenCount": 1000, "totalTokenCount": 1540,
    }  # fmt: skip
    usage = Usage.from_openai(usage_from_metadata(meta))
    assert usage == Usage(prompt_tokens=1200, completion_tokens=340, cached_tokens=1000, reasoning_tokens=300)
    cost = TABLE.cost("gemini", "gemini-2.5-flash", usage)  # thoughts billed as output
    assert cost == pytest.approx((200 * 0.30 + 1000 * 0.03 + 340 * 2.50) / M)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=30), inner, max_size=4),
    max_leaves=12,
)
usage_like = st.fixed_dictionaries(
    {},
    optional={
        "prompt_tokens": json_values,
        "completion_tokens": json_values,
        "prompt_tokens_details": json_values | st.fixed_dictionaries({"cached_tokens": json_values}),
        "completion_tokens_details": json_values | st.fixed_dictionaries({"reasoning_tokens": json_values}),
        "cost": json_values,
    },
)


@given(usage_like | json_values)
def test_any_usage_object_reads_as_counts_or_none_and_never_raises(raw: Any) -> None:
    usage = Usage.from_openai(raw)
    if not isinstance(raw, dict):
        assert usage is None
        return
    assert usage is not None
    assert all(isinstance(v, int) and v >= 0 for v in (usage.prompt_tokens, usage.completion_tokens,
               usage.cached_tokens, usage.reasoning_tokens))  # fmt: skip
    cost = cost_of(raw, usage, "gemini", "gemini-2.5-pro", TABLE)
    assert cost is None or (math.isfinite(cost) and cost >= 0)


def test_prices_setting_from_yaml_env_and_option() -> None:
    yaml = {"prices": {"my-model": {"input": 1, "output": 2, "cached_input": 0.5}}}
    s = load_settings({}, {}, yaml)
    assert s.prices == {"my-model": Price(input=1.0, output=2.0, cached_input=0.5)}
    env = {"LLM_PRICES": json.dumps({"m": {"input": 0.1, "output": 0.2}})}
    assert load_settings({}, env, {}).prices["m"].output == 0.2
    option = {"llm_prices": json.dumps({"m": {"input": 3, "output": 4}})}
    assert load_settings(option, env, yaml).prices == {"m": Price(input=3.0, output=4.0)}  # --set wins
    assert load_settings({}, {}, {}).prices == {}


@pytest.mark.parametrize(
    ("prices", "words"),
    [
        (
            {"gemini-x": {"input": -1, "output": 2}},
            ["model 'gemini-x'", "input", "greater than or equal to 0"],
        ),
        ({"gemini-y": {"input": 1}}, ["model 'gemini-y'", "output", "Field required"]),
        ({"gemini-z": {"input": 1, "output": 2, "outptu": 3}}, ["model 'gemini-z'", "outptu"]),
        ({"m": {"input": "cheap", "output": 2}}, ["model 'm'", "input"]),
        ({"m": {"input": 1, "output": 2, "long_prompt": {"input": 1, "output": 2}}}, ["model 'm'", "above"]),
        (["gemini-2.5-pro"], ["mapping of model name"]),
        ("{not json", ["JSON object"]),
    ],
)
def test_a_bad_price_is_refused_naming_the_model(prices: Any, words: list[str]) -> None:
    with pytest.raises(SettingsError) as e:
        load_settings({}, {}, {"prices": prices})
    message = str(e.value)
    assert "LLM_PRICES" in message and all(w in message for w in words), message

"""What one call cost in USD: the provider's own figure when it reports one (OpenRouter's `usage.cost`),
else the price table's (the shipped prices of addons/backends/prices.py under the `prices:` setting).
None when neither knows: an unknown cost is never taken for 0."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from addons.records import Usage
from addons.setting_spec import LongPrompt, Price

PER = 1_000_000  # prices are per 1M tokens


class PriceTable:
    """Prices by model name. A `backend:model` entry wins over a plain `model` one, so a model name two
    backends share can be priced for one of them only."""

    def __init__(self, shipped: Mapping[str, Price], overrides: Mapping[str, Price]) -> None:
        self._prices = {**shipped, **overrides}

    def price(self, backend: str | None, model: str | None) -> Price | None:
        if not model:
            return None
        return self._prices.get(f"{backend}:{model}") or self._prices.get(model)

    def cost(self, backend: str | None, model: str | None, usage: Usage) -> float | None:
        price = self.price(backend, model)
        # No tokens reported (an answer cut off before its usage, an endpoint that counts none): the call
        # was not free, its cost is unknown.
        if price is None or usage.total_tokens == 0:
            return None
        return priced(price, usage)


def priced(price: Price, usage: Usage) -> float:
    """Cached prompt tokens at the cached price (the input price when there is none), the rest of the
    prompt at the input price, completion tokens (reasoning included) at the output price; a prompt over
    the long-prompt threshold bills the whole call at the long-prompt prices."""
    rates: Price | LongPrompt = price
    if price.long_prompt is not None and usage.prompt_tokens > price.long_prompt.above:
        rates = price.long_prompt
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    cached_rate = rates.input if rates.cached_input is None else rates.cached_input
    fresh = usage.prompt_tokens - cached
    return (fresh * rates.input + cached * cached_rate + usage.completion_tokens * rates.output) / PER


def reported_cost(usage: Any) -> float | None:
    """The cost a provider put in the answer's usage (OpenRouter, asked with `usage: {include: true}`):
    `cost` is what the account was charged; with the user's own provider key (BYOK) the provider's
    charge, `cost_details.upstream_inference_cost`, comes on top."""
    if not isinstance(usage, dict) or not _amount(usage.get("cost")):
        return None
    cost = float(usage["cost"])
    details = usage.get("cost_details")
    if usage.get("is_byok") is True and isinstance(details, dict):
        upstream = details.get("upstream_inference_cost")
        if _amount(upstream):
            cost += float(upstream)
    return cost


def cost_of(
    usage: Any, tokens: Usage, backend: str | None, model: str | None, prices: PriceTable
) -> float | None:
    """The call's cost from its OpenAI-shaped usage object (`tokens` is what Usage.from_openai read)."""
    reported = reported_cost(usage)
    return reported if reported is not None else prices.cost(backend, model, tokens)


def _amount(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < math.inf

"""The shipped price table: what models cost whose backend reports no cost itself (Gemini), in USD per 1M
tokens, paid tier, standard (not batch) processing, text input. `prices:` in mitm_config.yaml (or the
--settings file) adds models and overrides these entry by entry.

Read from Google's pricing page on PRICES_READ; prices change, so the README says how to override them.
Context caching is billed at the cached price for implicit and explicit cache hits alike (cache storage
per hour is not a per-call cost and is not counted). Models whose price depends on the date (introductory
prices) are left out: a wrong price is worse than an unknown one.
"""

from __future__ import annotations

from addons.setting_spec import LongPrompt, Price

PRICES_SOURCE = "https://ai.google.dev/gemini-api/docs/pricing"
PRICES_READ = "2026-10-07"
# Pro models bill the whole call at the higher price once the prompt is over 200k tokens.
_LONG = 200_000

DEFAULT_PRICES: dict[str, Price] = {
    "gemini-2.5-pro": Price(
        input=1.25, output=10.0, cached_input=0.125,
        long_prompt=LongPrompt(above=_LONG, input=2.5, output=15.0, cached_input=0.25),
    ),
    "gemini-2.5-flash": Price(input=0.30, output=2.50, cached_input=0.03),
    "gemini-2.5-flash-lite": Price(input=0.10, output=0.40, cached_input=0.01),
    "gemini-3-pro-preview": Price(
        input=2.0, output=12.0, cached_input=0.20,
        long_prompt=LongPrompt(above=_LONG, input=4.0, output=18.0, cached_input=0.40),
    ),
    "gemini-3.1-pro-preview": Price(
        input=2.0, output=12.0, cached_input=0.20,
        long_prompt=LongPrompt(above=_LONG, input=4.0, output=18.0, cached_input=0.40),
    ),
    "gemini-3-flash-preview": Price(input=0.50, output=3.0, cached_input=0.05),
    "gemini-3.5-flash": Price(input=1.50, output=9.0),
    "gemini-3.5-flash-lite": Price(input=0.30, output=2.50),
    "gemini-embedding-001": Price(input=0.15, output=0.0),
}  # fmt: skip

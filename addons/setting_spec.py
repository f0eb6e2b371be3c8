"""What a setting is: one declaration (name, option, env, help, type, default) and the validated value
types declarations use. A leaf of its own so that settings.py and the backends' declarations
(addons/backends/specs.py), which settings.py reads, can both use it without importing each other."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from addons.netaddr import is_loopback


@dataclass(frozen=True, slots=True)
class SettingSpec:
    name: str  # attribute of Settings and key in mitm_config.yaml
    env: str  # environment variable
    help: str
    type: Any  # what pydantic validates the value with: bounds and checks ride along in Annotated
    default: Any
    option: str = ""  # mitmproxy option name (--set NAME=...); empty: the same as `name`

    def __post_init__(self) -> None:
        if not self.option:
            object.__setattr__(self, "option", self.name)


def _url(v: str) -> str:
    if not re.match(r"^https?://[^\s/]+", v):
        raise ValueError(f"must be an http(s) URL, got {v!r}")
    return v.rstrip("/")


def _keys_travel_encrypted(v: str) -> str:
    # Keys go in this URL's requests: plain http only where nothing can listen in (tests, local relays).
    url = urlsplit(v)
    if url.scheme == "http" and not is_loopback(url.hostname or ""):
        raise ValueError("must use https:// (API keys are sent there); http:// is for loopback only")
    return v


def _no_whitespace(v: str) -> str:
    if any(c.isspace() for c in v):
        raise ValueError("must not contain whitespace")
    return v


def _host_list(v: Any) -> Any:
    if isinstance(v, str):
        v = [h for h in re.split(r"[,\s]+", v) if h]
    return tuple(h.lower() for h in v)


Url = Annotated[str, AfterValidator(_url)]
# A provider's base URL: every key of that provider is sent there.
KeyUrl = Annotated[str, AfterValidator(_url), AfterValidator(_keys_travel_encrypted)]
NoWhitespace = AfterValidator(_no_whitespace)
# Comma- or space-separated in options and env, a list in YAML; compared lower-case.
Hosts = Annotated[tuple[str, ...], BeforeValidator(_host_list)]


class LongPrompt(BaseModel):
    """Prices of prompts over `above` tokens (Gemini's Pro models bill prompts over 200k higher)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    above: int = Field(gt=0)
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)


class Price(BaseModel):
    """A model's prices in USD per 1M tokens. Cached prompt tokens cost `cached_input` when given, else
    `input`; reasoning tokens are output."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    long_prompt: LongPrompt | None = None


def named_table[M: BaseModel](
    v: Any, model: type[M], key: str, shape: str, max_name: int = 0
) -> dict[str, M]:
    """Name -> `model`, from YAML (a mapping) or an option or environment value (JSON): `prices:` by model,
    `budgets:` by project. `key` names the keys in messages ("model", "project"), `shape` the values; a
    bad entry's message names its key and field. `max_name`: the longest name allowed (0: no limit)."""
    if isinstance(v, str):
        try:
            v = json.loads(v) if v.strip() else {}
        except json.JSONDecodeError as e:
            raise ValueError(f"must be a JSON object of {key} name to {shape}: {e}") from None
    if not isinstance(v, dict):
        raise ValueError(f"must be a mapping of {key} name to {shape}")
    out = {}
    for name, entry in v.items():
        if not isinstance(name, str) or not name.strip() or (max_name and len(name) > max_name):
            size = f"text of 1-{max_name} characters" if max_name else "non-empty text"
            raise ValueError(f"{key} names must be {size}, got {name!r}")
        try:
            out[name.strip()] = entry if isinstance(entry, model) else model.model_validate(entry)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or key}: {err['msg']}" for err in e.errors()
            )
            raise ValueError(f"{key} {name!r}: {problems}") from None
    return out


def _price_table(v: Any) -> dict[str, Price]:
    return named_table(v, Price, "model", "{input: USD per 1M tokens, output: ...}")


# `prices:` in YAML; JSON in an option or the environment.
Prices = Annotated[dict[str, Price], BeforeValidator(_price_table)]
PRICES = SettingSpec(
    "prices", "LLM_PRICES", "USD per 1M tokens by model (over the shipped ones).", Prices, {}, "llm_prices"
)

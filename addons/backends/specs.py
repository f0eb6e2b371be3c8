"""Each backend declared: name, key environment name and its own settings. Data only, a leaf: the
settings layer reads it to know which keys and options exist; registry.py adds how each is built."""

from __future__ import annotations

from dataclasses import dataclass

from addons.setting_spec import KeyUrl, SettingSpec, Url


@dataclass(frozen=True, slots=True)
class BackendSpec:
    name: str  # also the model prefix (`name:model`) and the key ring's name
    key_env: str  # keys: KEY_ENV, or KEY_ENV_1 .. KEY_ENV_20
    base_url: SettingSpec  # its default is the provider's own URL: any other is announced at start-up
    extra: tuple[SettingSpec, ...] = ()

    @property
    def settings(self) -> tuple[SettingSpec, ...]:
        return (self.base_url, *self.extra)


OPENROUTER = BackendSpec(
    "openrouter",
    "OPENROUTER_API_KEY",
    SettingSpec(
        "openrouter_api_base_url",
        "OPENROUTER_API_BASE_URL",
        "OpenRouter API base URL.",
        KeyUrl,
        "https://openrouter.ai/api/v1",
    ),
    (
        SettingSpec(
            "app_site_url", "APP_SITE_URL", "HTTP-Referer sent to OpenRouter.", Url, "http://localhost:8000"
        ),
        SettingSpec("app_x_title", "APP_X_TITLE", "X-Title sent to OpenRouter.", str, "llm-intercept"),
    ),
)
GEMINI = BackendSpec(
    "gemini",
    "GEMINI_API_KEY",
    SettingSpec(
        "gemini_api_base_url",
        "GEMINI_API_BASE_URL",
        "Gemini API base URL.",
        KeyUrl,
        "https://generativelanguage.googleapis.com",
    ),
)
# In declaration order; the first is the default backend.
BACKENDS: tuple[BackendSpec, ...] = (OPENROUTER, GEMINI)
SPECS = {b.name: b for b in BACKENDS}
# A model reference for help texts and error messages.
EXAMPLE_MODEL = "gemini:gemini-2.5-flash"

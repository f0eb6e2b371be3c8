"""Which backends exist and how each is built from the settings: the one place that names them."""

from __future__ import annotations

from collections.abc import Callable

from addons.backends.base import Backend
from addons.backends.gemini import GeminiBackend
from addons.backends.openrouter import OpenRouterBackend
from addons.settings import Settings

FACTORIES: dict[str, Callable[[Settings], Backend]] = {
    "openrouter": lambda s: OpenRouterBackend(s.openrouter_api_base_url, s.app_site_url, s.app_x_title),
    "gemini": lambda s: GeminiBackend(s.gemini_api_base_url),
}


def build_backends(settings: Settings) -> dict[str, Backend]:
    return {name: factory(settings) for name, factory in FACTORIES.items()}

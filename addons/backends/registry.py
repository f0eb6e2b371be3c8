"""Which backends exist and how each is built from the settings: the one place that names them.

What each declares (key env name, its settings) is in specs.py, a leaf the settings layer reads too;
the factories are here because they import the backends' code, which settings must not load."""

from __future__ import annotations

from collections.abc import Callable

from addons.backends.base import Backend
from addons.backends.gemini import GeminiBackend
from addons.backends.openrouter import OpenRouterBackend
from addons.backends.specs import GEMINI, OPENROUTER, SPECS
from addons.settings import Settings

FACTORIES: dict[str, Callable[[Settings], Backend]] = {
    OPENROUTER.name: lambda s: OpenRouterBackend(s.openrouter_api_base_url, s.app_site_url, s.app_x_title),
    GEMINI.name: lambda s: GeminiBackend(s.gemini_api_base_url),
}


def build_backends(settings: Settings) -> dict[str, Backend]:
    """Every declared backend, in declaration order."""
    return {name: FACTORIES[name](settings) for name in SPECS}


def key_env(backend: str) -> str:
    """The environment name of the backend's single key; numbered keys add _1 .. _20."""
    return SPECS[backend].key_env

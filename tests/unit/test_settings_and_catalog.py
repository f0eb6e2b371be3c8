from __future__ import annotations

import pytest

from addons.backends.registry import FACTORIES, build_backends, key_env
from addons.backends.specs import BACKENDS, SPECS
from addons.pipeline.dispatch import route
from addons.routing.catalog import ModelCatalog
from addons.settings import (
    FIELDS,
    Settings,
    SettingsError,
    collect_keys,
    custom_base_urls,
    load_settings,
    read_environment,
)


def test_precedence_set_env_yaml_default() -> None:
    yaml = {"command_prefix": "%%", "proxy_timeout": 7, "app_x_title": "y"}
    s = load_settings({"command_prefix": "@@"}, {"COMMAND_PREFIX": "##", "PROXY_TIMEOUT": "9"}, yaml)
    assert (s.command_prefix, s.proxy_timeout, s.app_x_title, s.gemini_api_base_url) == (
        "@@",
        9.0,
        "y",
        "https://generativelanguage.googleapis.com",
    )
    assert s.sources["command_prefix"] == "--set command_prefix"
    assert s.sources["proxy_timeout"] == "PROXY_TIMEOUT"


@pytest.mark.parametrize(
    ("cli", "env", "yaml", "needle"),
    [
        ({}, {"PROXY_TIMEOUT": "abc"}, {}, "PROXY_TIMEOUT (from PROXY_TIMEOUT)"),
        ({"proxy_timeout": "0"}, {}, {}, "--set proxy_timeout"),
        ({}, {}, {"llm_backend": "claude"}, "mitm_config.yaml: llm_backend"),
        ({}, {"INTERACTIVE_MODE": "maybe"}, {}, "INTERACTIVE_MODE"),
        ({}, {}, {"no_such": 1}, "unknown setting(s) no_such"),
        ({}, {"COMMAND_PREFIX": "a b"}, {}, "whitespace"),
        (
            {},
            {"GEMINI_API_BASE_URL": "http://example.com"},
            {},
            "GEMINI_API_BASE_URL (from GEMINI_API_BASE_URL)",
        ),
        ({}, {}, {"app_site_url": "ftp://x"}, "APP_SITE_URL (from mitm_config.yaml: app_site_url)"),
    ],
)
def test_bad_values_name_the_setting(cli: dict, env: dict, yaml: dict, needle: str) -> None:
    with pytest.raises(SettingsError) as e:
        load_settings(cli, env, yaml)
    assert needle in str(e.value)


def test_each_setting_is_declared_once_and_the_model_follows() -> None:
    options = [s.option for s in FIELDS.values()]
    envs = [s.env for s in FIELDS.values()]
    assert len(set(options)) == len(options) and len(set(envs)) == len(envs)
    defaults = Settings()
    for name, spec in FIELDS.items():
        assert getattr(defaults, name) == spec.default
    # The backends' own settings come from their declarations, not from a second list here.
    assert {s.name for b in BACKENDS for s in b.settings} <= set(FIELDS)
    assert set(Settings.model_fields) == {*FIELDS, "routes", "model_map", "keys", "sources"}


def test_default_backend_is_checked_against_the_registry() -> None:
    assert load_settings({}, {}, {}).llm_backend == BACKENDS[0].name
    for b in BACKENDS:
        assert load_settings({"llm_backend": b.name}, {}, {}).llm_backend == b.name
    with pytest.raises(SettingsError, match=" or ".join(repr(b.name) for b in BACKENDS)):
        load_settings({}, {"LLM_BACKEND": "claude"}, {})


def test_registry_builds_every_declared_backend() -> None:
    assert set(FACTORIES) == set(SPECS)
    built = build_backends(load_settings({}, {}, {}))
    assert [(name, b.name) for name, b in built.items()] == [(b.name, b.name) for b in BACKENDS]
    assert key_env("gemini") == "GEMINI_API_KEY"


def test_only_base_urls_that_are_not_the_providers_own_are_announced() -> None:
    env = {
        "OPENROUTER_API_BASE_URL": "https://relay.example/v1",
        "GEMINI_API_BASE_URL": SPECS["gemini"].base_url.default,
    }
    assert custom_base_urls(load_settings({}, env, {})) == [
        "openrouter_api_base_url = https://relay.example/v1 (from OPENROUTER_API_BASE_URL)"
    ]


def test_booleans_accept_common_spellings() -> None:
    for word, value in [
        ("on", True),
        ("YES", True),
        ("1", True),
        ("off", False),
        ("false", False),
        ("0", False),
    ]:
        assert load_settings({}, {"INTERACTIVE_MODE": word}, {}).interactive_mode is value


def test_keys_single_numbered_and_exclusive() -> None:
    ring = collect_keys(
        {"GEMINI_API_KEY_3": "c" * 10, "GEMINI_API_KEY_1": "a" * 10, "GEMINI_API_KEY_2": " "}, "gemini"
    )
    assert ring.names == ("GEMINI_API_KEY_1", "GEMINI_API_KEY_3")
    assert ring.secret("GEMINI_API_KEY_3") == "c" * 10
    assert "cccc" not in repr(ring)
    with pytest.raises(SettingsError, match="not both"):
        collect_keys({"GEMINI_API_KEY": "x" * 10, "GEMINI_API_KEY_1": "y" * 10}, "gemini")
    with pytest.raises(SettingsError, match="_1 to"):
        collect_keys({"GEMINI_API_KEY_21": "x" * 10}, "gemini")


def test_env_file_loses_to_real_environment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / ".env"
    f.write_text("PROXY_TIMEOUT=5\nexport APP_X_TITLE='from file'\n")
    env = read_environment(str(f), {"PROXY_TIMEOUT": "6"})
    assert env["PROXY_TIMEOUT"] == "6" and env["APP_X_TITLE"] == "from file"


def test_catalog_prefix_rules() -> None:
    c = ModelCatalog(("openrouter", "gemini"))
    c.set_models("openrouter", ["a/b", "c/d:free"])
    c.set_models("gemini", ["gemini-2.5-flash"])
    assert c.split("gemini:gemini-2.5-flash", "openrouter") == ("gemini", "gemini-2.5-flash")
    assert c.split("c/d:free", "openrouter") == ("openrouter", "c/d:free")
    assert c.split("OpenRouter:c/d:free", "gemini") == ("openrouter", "c/d:free")
    assert c.listing("openrouter") == [
        ("a/b", "openrouter"),
        ("c/d:free", "openrouter"),
        ("gemini:gemini-2.5-flash", "gemini"),
    ]
    assert c.listing("gemini")[0] == ("gemini-2.5-flash", "gemini")
    for backend in ("openrouter", "gemini"):  # every listed id resolves back to its backend and model
        for mid, owner in c.listing(backend):
            b, m = c.split(mid, backend)
            assert b == owner and c.entry(b).knows(m)


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("POST", "/v1/chat/completions", "chat"),
        ("POST", "/chat/completions?x=1", "chat"),
        ("POST", "/v1/chat/completions/", "chat"),
        ("GET", "/v1/chat/completions", "method"),
        ("GET", "/v1/models", "models"),
        ("GET", "/models", "models"),
        ("GET", "/v1/models/openai/gpt-4o", "model"),
        ("POST", "/v1/messages?beta=true", "messages"),
        ("POST", "/v1/MESSAGES", "messages"),
        ("GET", "/v1/messages", "method"),
        ("POST", "/v1/messages/count_tokens", "count_tokens"),
        ("POST", "/v1/responses", "responses"),
        ("GET", "/v1/responses/resp_1", "response_get"),
        ("DELETE", "/v1/responses/resp_1", "response_delete"),
        ("POST", "/v1/responses/resp_1", "method"),
        ("GET", "/v1/responses/resp_1/input_items", "input_items"),
        ("POST", "/v1/embeddings", "embeddings"),
        ("POST", "/v1/completions", "completions"),
        ("POST", "/v1/files", None),
        ("GET", "/", None),
    ],
)
def test_route(method: str, path: str, kind: str | None) -> None:
    assert route(method, path) == kind

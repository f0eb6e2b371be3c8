"""Start-up configuration: one precedence, validated once, keys kept apart from everything else.

Precedence (first wins): mitmproxy `--set` option > environment (real env, then `.env`) > mitm_config.yaml >
built-in default. API keys come from the environment / `.env` only and are referred to by *name*
(e.g. OPENROUTER_API_KEY_2) everywhere outside this module.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from addons.netaddr import is_loopback

BACKENDS = ("openrouter", "gemini")
MAX_KEYS = 20
KEY_ENV = {"openrouter": "OPENROUTER_API_KEY", "gemini": "GEMINI_API_KEY"}
DEFAULT_CONFIG_FILE = Path(__file__).resolve().parent.parent / "mitm_config.yaml"
DEFAULT_ENV_FILE = DEFAULT_CONFIG_FILE.with_name(".env")  # next to run_proxy.sh


class SettingsError(ValueError):
    """A setting has a bad value; the message names the setting and where it came from."""


@dataclass(frozen=True, slots=True)
class SettingSpec:
    option: str  # mitmproxy option name (--set NAME=...)
    env: str | None  # environment variable
    help: str


# Every user-facing setting: mitmproxy option name, environment name, help text.
FIELDS: dict[str, SettingSpec] = {
    "llm_backend": SettingSpec("llm_backend", "LLM_BACKEND", "Default backend: openrouter or gemini."),
    "command_prefix": SettingSpec("command_prefix", "COMMAND_PREFIX", "Prefix of in-chat commands."),
    "commands": SettingSpec(
        "llm_commands",
        "LLM_COMMANDS",
        "Which in-chat commands run: all; session (none that change other sessions or routes); off.",
    ),
    "interactive_mode": SettingSpec(
        "interactive_mode", "INTERACTIVE_MODE", "Answer command-only messages with a banner."
    ),
    "redact_api_keys_in_prompts": SettingSpec(
        "redact_api_keys_in_prompts", "REDACT_API_KEYS_IN_PROMPTS", "Replace configured API keys in prompts."
    ),
    "openrouter_api_base_url": SettingSpec(
        "openrouter_api_base_url", "OPENROUTER_API_BASE_URL", "OpenRouter API base URL."
    ),
    "gemini_api_base_url": SettingSpec("gemini_api_base_url", "GEMINI_API_BASE_URL", "Gemini API base URL."),
    "proxy_host": SettingSpec("proxy_host", "PROXY_HOST", "Address run_proxy.sh binds (informational here)."),
    "proxy_port": SettingSpec("proxy_port", "PROXY_PORT", "Port run_proxy.sh binds (informational here)."),
    "proxy_timeout": SettingSpec("proxy_timeout", "PROXY_TIMEOUT", "Seconds to wait for upstream data."),
    "app_site_url": SettingSpec("app_site_url", "APP_SITE_URL", "HTTP-Referer sent to OpenRouter."),
    "app_x_title": SettingSpec("app_x_title", "APP_X_TITLE", "X-Title sent to OpenRouter."),
    "intercept_hosts": SettingSpec(
        "intercept_hosts", "LLM_INTERCEPT_HOSTS", "Hosts treated as OpenAI in proxy modes (comma-separated)."
    ),
    "allowed_hosts": SettingSpec(
        "allowed_hosts",
        "LLM_ALLOWED_HOSTS",
        "Host names clients may address the proxy by, besides IP addresses and localhost (comma-separated).",
    ),
    "cors_origins": SettingSpec(
        "cors_origins",
        "LLM_CORS_ORIGINS",
        "Web origins whose pages may call the proxy (comma-separated; default: none).",
    ),
    "reverse_passthrough": SettingSpec(
        "reverse_passthrough",
        "LLM_REVERSE_PASSTHROUGH",
        "Reverse mode: forward paths the proxy does not serve to the reverse target (else 404).",
    ),
    "discovery_timeout": SettingSpec(
        "discovery_timeout", "LLM_DISCOVERY_TIMEOUT", "Seconds a backend's model discovery may take."
    ),
    "max_request_bytes": SettingSpec(
        "max_request_bytes", "LLM_MAX_REQUEST_BYTES", "Largest accepted chat request body, in bytes."
    ),
    "state_file": SettingSpec(
        "llm_state", "LLM_STATE_FILE", "File that keeps what in-chat commands change across restarts."
    ),
    "history_db": SettingSpec(
        "llm_history", "LLM_HISTORY", "Session history SQLite file: 'auto' (user data dir), 'off', or a path."
    ),
    "cooldown_seconds": SettingSpec(
        "cooldown_seconds",
        "LLM_COOLDOWN_SECONDS",
        "Rest for a rate-limited key when the provider gives no delay.",
    ),
    "credit_retire_seconds": SettingSpec(
        "credit_retire_seconds",
        "LLM_CREDIT_RETIRE_SECONDS",
        "How long a key out of credits (OpenRouter 402) is retired; 0 = until restart.",
    ),
    "proxy_api_key": SettingSpec(
        "proxy_api_key", "PROXY_API_KEY", "Access token clients must present (Bearer or x-api-key)."
    ),
    "allow_remote_without_token": SettingSpec(
        "allow_remote_without_token",
        "LLM_ALLOW_REMOTE_WITHOUT_TOKEN",
        "Allow listening on a non-loopback address without PROXY_API_KEY (not recommended).",
    ),
    "session_idle_ttl": SettingSpec(
        "session_idle_ttl", "LLM_SESSION_TTL", "Seconds after which an idle session is forgotten."
    ),
    "history_max_days": SettingSpec(
        "history_max_days",
        "LLM_HISTORY_MAX_DAYS",
        "History rows older than this many days are deleted; 0 = keep them.",
    ),
    "history_max_mb": SettingSpec(
        "history_max_mb",
        "LLM_HISTORY_MAX_MB",
        "The history file is kept below this many MB (oldest rows go).",
    ),
}


class KeyRing(BaseModel):
    """A backend's keys by name. Values are SecretStr so a stray repr or log line shows ********."""

    model_config = ConfigDict(frozen=True)
    backend: str
    names: tuple[str, ...] = ()
    secrets: tuple[SecretStr, ...] = ()

    def __len__(self) -> int:
        return len(self.names)

    def secret(self, name: str) -> str:
        return self.secrets[self.names.index(name)].get_secret_value()


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    llm_backend: Literal["openrouter", "gemini"] = "openrouter"
    command_prefix: str = Field("!/", min_length=1, max_length=16)
    commands: Literal["all", "session", "off"] = "all"
    interactive_mode: bool = False
    redact_api_keys_in_prompts: bool = True
    openrouter_api_base_url: str = "https://openrouter.ai/api/v1"
    gemini_api_base_url: str = "https://generativelanguage.googleapis.com"
    proxy_host: str = "127.0.0.1"
    proxy_port: int = Field(8000, ge=0, le=65535)
    proxy_timeout: float = Field(120.0, gt=0, le=3600)
    app_site_url: str = "http://localhost:8000"
    app_x_title: str = "llm-intercept"
    intercept_hosts: tuple[str, ...] = ("api.openai.com",)
    allowed_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    reverse_passthrough: bool = False
    discovery_timeout: float = Field(10.0, gt=0, le=300)
    max_request_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    state_file: str | None = None
    history_db: str = "auto"
    session_idle_ttl: float = Field(24 * 3600, gt=0)
    history_max_days: float = Field(30.0, ge=0)
    history_max_mb: float = Field(512.0, gt=0)
    cooldown_seconds: float = Field(60.0, ge=0)
    credit_retire_seconds: float = Field(0.0, ge=0)
    routes: dict[str, Any] = Field(default_factory=dict)  # from mitm_config.yaml only
    proxy_api_key: SecretStr | None = None
    allow_remote_without_token: bool = False
    keys: dict[str, KeyRing] = Field(default_factory=dict)
    # Where each non-default value came from, for the start-up summary ("--set", "env", "yaml").
    sources: dict[str, str] = Field(default_factory=dict)

    @field_validator("command_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if any(c.isspace() for c in v):
            raise ValueError("must not contain whitespace")
        return v

    @field_validator("openrouter_api_base_url", "gemini_api_base_url", "app_site_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError(f"must be an http(s) URL, got {v!r}")
        return v.rstrip("/")

    @field_validator("openrouter_api_base_url", "gemini_api_base_url")
    @classmethod
    def _keys_travel_encrypted(cls, v: str) -> str:
        # Keys go in this URL's requests: plain http only where nothing can listen in (tests, local relays).
        url = urlsplit(v)
        if url.scheme == "http" and not is_loopback(url.hostname or ""):
            raise ValueError("must use https:// (API keys are sent there); http:// is for loopback only")
        return v

    @field_validator("intercept_hosts", "allowed_hosts", "cors_origins", mode="before")
    @classmethod
    def _hosts(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [h for h in re.split(r"[,\s]+", v) if h]
        return tuple(h.lower() for h in v)

    def keyring(self, backend: str) -> KeyRing:
        return self.keys.get(backend) or KeyRing(backend=backend)

    def all_secrets(self) -> list[tuple[str, str]]:
        """Every configured secret by name: backend keys and the proxy's own access token."""
        out = [
            (name, s.get_secret_value())
            for ring in self.keys.values()
            for name, s in zip(ring.names, ring.secrets, strict=True)
        ]
        if self.proxy_api_key is not None:
            out.append(("PROXY_API_KEY", self.proxy_api_key.get_secret_value()))
        return out


def collect_keys(env: Mapping[str, str], backend: str) -> KeyRing:
    """OPENROUTER_API_KEY or OPENROUTER_API_KEY_1.._20: one form, never both."""
    base = KEY_ENV[backend]
    single = (env.get(base) or "").strip()
    numbered: dict[int, str] = {}
    for name, value in env.items():
        m = re.fullmatch(re.escape(base) + r"_(\d+)", name)
        if m and value.strip():
            n = int(m.group(1))
            if not 1 <= n <= MAX_KEYS:
                raise SettingsError(f"{name}: numbered keys go from {base}_1 to {base}_{MAX_KEYS}")
            numbered[n] = value.strip()
    if single and numbered:
        raise SettingsError(
            f"{base} and {base}_1..{base}_{MAX_KEYS} are both set: use either the single key "
            f"or the numbered keys, not both"
        )
    if single:
        return KeyRing(backend=backend, names=(base,), secrets=(SecretStr(single),))
    order = sorted(numbered)
    return KeyRing(
        backend=backend,
        names=tuple(f"{base}_{n}" for n in order),
        secrets=tuple(SecretStr(numbered[n]) for n in order),
    )


def custom_base_urls(settings: Settings) -> list[str]:
    """One line per provider base URL that is not the provider's own (keys are sent there): option,
    URL and where it was set."""
    return [
        f"{FIELDS[name].option} = {getattr(settings, name)} (from {settings.sources.get(name, '?')})"
        for name in ("openrouter_api_base_url", "gemini_api_base_url")
        if getattr(settings, name) != Settings.model_fields[name].default
    ]


def read_environment(env_file: str | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Real environment wins over the .env file, as with every dotenv tool. Without `env_file` only the
    project's own .env is read, never one in the working directory: a checked-out repository could
    otherwise point the base URLs elsewhere and collect every key."""
    env: dict[str, str] = {}
    path = Path(env_file) if env_file else DEFAULT_ENV_FILE
    if path.is_file():
        env.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    elif env_file:
        raise SettingsError(f"env file {env_file} does not exist")
    env.update(environ if environ is not None else os.environ)
    return env


def read_yaml(path: str | None) -> dict[str, Any]:
    file = Path(path) if path else DEFAULT_CONFIG_FILE
    if not file.is_file():
        if path:
            raise SettingsError(f"config file {path} does not exist")
        return {}
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise SettingsError(f"{file}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{file}: expected a mapping of settings at the top level")
    return data


def load_settings(
    cli: Mapping[str, str | None],
    env: Mapping[str, str],
    yaml_data: Mapping[str, Any],
    yaml_name: str = "mitm_config.yaml",
) -> Settings:
    """Merge the three sources by precedence and validate. Raises SettingsError naming the setting."""
    unknown = sorted(set(yaml_data) - set(FIELDS) - {"routes"})
    if unknown:
        raise SettingsError(
            f"{yaml_name}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}"
        )
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, f in FIELDS.items():
        if cli.get(f.option) is not None:
            values[name], sources[name] = cli[f.option], f"--set {f.option}"
        elif f.env and env.get(f.env, "").strip():
            values[name], sources[name] = env[f.env].strip(), f.env
        elif name in yaml_data and yaml_data[name] is not None:
            values[name], sources[name] = yaml_data[name], f"{yaml_name}: {name}"
    try:
        keys = {b: collect_keys(env, b) for b in BACKENDS}
        routes = yaml_data.get("routes") or {}
        if not isinstance(routes, dict):
            raise SettingsError(f"{yaml_name}: routes must be a mapping of route name to policy/elements")
        return Settings(**values, keys=keys, sources=sources, routes=routes)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            name = str(err["loc"][0]) if err["loc"] else "?"
            where = sources.get(name, name)
            env_name = FIELDS[name].env if name in FIELDS else None
            label = f"{env_name or name} (from {where})" if name in sources else (env_name or name)
            shown = "<hidden>" if name == "proxy_api_key" else repr(values.get(name))
            problems.append(f"{label}: {err['msg']} (got {shown})")
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None

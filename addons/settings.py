"""Start-up configuration: one precedence, validated once, keys kept apart from everything else.

Precedence (first wins): mitmproxy `--set` option > environment (real env, then `.env`) > mitm_config.yaml >
built-in default. API keys come from the environment / `.env` only and are referred to by *name*
(e.g. <BACKEND>_API_KEY_2) everywhere outside this module.

Each setting is declared once, as a SettingSpec: the mitmproxy options, the environment and YAML names and
the pydantic model are derived from the declarations, the backends' own ones included (backends/specs.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

import yaml
from dotenv import dotenv_values
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError, create_model

from addons.backends.specs import BACKENDS, SPECS
from addons.budgets.limits import ProjectBudgets
from addons.guards.specs import GUARDS
from addons.setting_spec import PRICES, Hosts, NoWhitespace, SettingSpec

MAX_KEYS = 20
MIN_TOKEN_LENGTH = 16  # PROXY_API_KEY: shorter is guessable
DEFAULT_CONFIG_FILE = Path(__file__).resolve().parent.parent / "mitm_config.yaml"
DEFAULT_ENV_FILE = DEFAULT_CONFIG_FILE.with_name(".env")  # next to run_proxy.sh
_NAMES = tuple(b.name for b in BACKENDS)


class SettingsError(ValueError):
    """A setting has a bad value; the message names the setting and where it came from."""


def _float(**bounds: float) -> Any:
    return Annotated[float, Field(**bounds)]


def _strong_token(v: SecretStr) -> SecretStr:
    # A short token is guessable, and under 8 characters log redaction would not even mask it.
    if len(v.get_secret_value()) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"must be at least {MIN_TOKEN_LENGTH} characters (make one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return v


def _server_url(*schemes: str) -> Any:
    """A URL of one of `schemes` with a host (its password is a secret: see Settings.all_secrets)."""

    def check(v: str) -> str:
        url = urlsplit(v)
        if url.scheme not in schemes or not url.hostname or url.port == 0:
            raise ValueError(f"must be a {' or '.join(f'{s}://' for s in schemes)} URL with a host")
        return v

    return Annotated[str, AfterValidator(check)] | None


_REDIS_URL, _PG_URL = _server_url("redis", "rediss"), _server_url("postgresql", "postgres")
# Every user-facing setting but the backends' own: name, environment name, help, type, default, option.
GENERAL: tuple[SettingSpec, ...] = (
    SettingSpec(
        "llm_backend", "LLM_BACKEND", f"Default backend: {' or '.join(_NAMES)}.", Literal[_NAMES], _NAMES[0]
    ),
    SettingSpec(
        "command_prefix",
        "COMMAND_PREFIX",
        "Prefix of in-chat commands.",
        Annotated[str, Field(min_length=1, max_length=16), NoWhitespace],
        "!/",
    ),
    SettingSpec(
        "commands",
        "LLM_COMMANDS",
        "Which in-chat commands run: all; session (none that change other sessions or routes); off.",
        Literal["all", "session", "off"],
        "all",
        option="llm_commands",
    ),
    SettingSpec(
        "interactive_mode", "INTERACTIVE_MODE", "Answer command-only messages with a banner.", bool, False
    ),
    SettingSpec(
        "redact_api_keys_in_prompts",
        "REDACT_API_KEYS_IN_PROMPTS",
        "Replace configured API keys in prompts.",
        bool,
        True,
    ),
    SettingSpec(
        "proxy_host", "PROXY_HOST", "Address run_proxy.sh binds (informational here).", str, "127.0.0.1"
    ),
    SettingSpec(
        "proxy_port",
        "PROXY_PORT",
        "Port run_proxy.sh binds (informational here).",
        Annotated[int, Field(ge=0, le=65535)],
        8000,
    ),
    SettingSpec(
        "proxy_timeout", "PROXY_TIMEOUT", "Seconds to wait for upstream data.", _float(gt=0, le=3600), 120.0
    ),
    SettingSpec(
        "commit_timeout",
        "LLM_COMMIT_TIMEOUT",
        "Seconds a stream may think without content before it is committed anyway (then keep-alives).",
        _float(gt=0, le=3600),
        15.0,
    ),
    SettingSpec(
        "intercept_hosts",
        "LLM_INTERCEPT_HOSTS",
        "Hosts whose LLM API paths the proxy serves itself in proxy modes (comma-separated).",
        Hosts,
        ("api.openai.com", "api.anthropic.com"),
    ),
    SettingSpec(
        "allowed_hosts",
        "LLM_ALLOWED_HOSTS",
        "Host names clients may address the proxy by, besides IP addresses and localhost (comma-separated).",
        Hosts,
        (),
    ),
    SettingSpec(
        "cors_origins",
        "LLM_CORS_ORIGINS",
        "Web origins whose pages may call the proxy (comma-separated; default: none).",
        Hosts,
        (),
    ),
    SettingSpec(
        "reverse_passthrough",
        "LLM_REVERSE_PASSTHROUGH",
        "Reverse mode: forward paths the proxy does not serve to the reverse target (else 404).",
        bool,
        False,
    ),
    SettingSpec(
        "discovery_timeout",
        "LLM_DISCOVERY_TIMEOUT",
        "Seconds a backend's model discovery may take.",
        _float(gt=0, le=300),
        10.0,
    ),
    SettingSpec(
        "max_request_bytes",
        "LLM_MAX_REQUEST_BYTES",
        "Largest accepted chat request body, in bytes.",
        Annotated[int, Field(ge=1024)],
        32 * 1024 * 1024,
    ),
    SettingSpec(
        "state_file",
        "LLM_STATE_FILE",
        "File that keeps what in-chat commands change across restarts.",
        str | None,
        None,
        option="llm_state",
    ),
    SettingSpec(
        "history_db",
        "LLM_HISTORY",
        "Session history SQLite file: 'auto' (user data dir), 'off', or a path.",
        str,
        "auto",
        option="llm_history",
    ),
    SettingSpec(
        "session_idle_ttl",
        "LLM_SESSION_TTL",
        "Seconds after which an idle session is forgotten.",
        _float(gt=0),
        24 * 3600,
    ),
    SettingSpec(
        "history_max_days",
        "LLM_HISTORY_MAX_DAYS",
        "History rows older than this many days are deleted; 0 = keep them.",
        _float(ge=0),
        30.0,
    ),
    SettingSpec(
        "history_max_mb",
        "LLM_HISTORY_MAX_MB",
        "The history file is kept below this many MB (oldest rows go).",
        _float(gt=0),
        512.0,
    ),
    SettingSpec(
        "cooldown_seconds",
        "LLM_COOLDOWN_SECONDS",
        "Rest for a rate-limited key when the provider gives no delay.",
        _float(ge=0),
        60.0,
    ),
    SettingSpec(
        "credit_retire_seconds",
        "LLM_CREDIT_RETIRE_SECONDS",
        "How long a key out of credits (a 402 answer) is retired; 0 = until restart.",
        _float(ge=0),
        0.0,
    ),
    SettingSpec(
        "proxy_api_key",
        "PROXY_API_KEY",
        "Access token clients must present (Bearer or x-api-key).",
        Annotated[SecretStr, AfterValidator(_strong_token)] | None,
        None,
    ),
    SettingSpec("redis_url", "LLM_REDIS_URL", "Redis that instances share state on.", _REDIS_URL, None),
    SettingSpec("database_url", "LLM_DATABASE_URL", "PostgreSQL for shared history.", _PG_URL, None),
    SettingSpec(
        "llm_namespace",
        "LLM_NAMESPACE",
        "Prefix of this deployment's Redis keys and base of its PostgreSQL schema name.",
        Annotated[str, Field(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9_.-]+$")],
        "llm-intercept",
    ),
    SettingSpec(
        "allow_remote_without_token",
        "LLM_ALLOW_REMOTE_WITHOUT_TOKEN",
        "Allow listening on a non-loopback address without PROXY_API_KEY (not recommended).",
        bool,
        False,
    ),
    PRICES,
    SettingSpec(
        "budgets", "LLM_BUDGETS", "USD per project: {daily, monthly} UTC", ProjectBudgets, {}, "llm_budgets"
    ),
)
FIELDS = {s.name: s for s in (*GENERAL, *GUARDS, *(s for b in BACKENDS for s in b.settings))}
# Where keys are sent: start-up only, and announced when not the provider's own.
BASE_URLS: tuple[SettingSpec, ...] = tuple(b.base_url for b in BACKENDS)


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


# One validated attribute per declaration.
_Declared: Any = create_model("_Declared", **{s.name: (s.type, s.default) for s in FIELDS.values()})


class Settings(_Declared):
    model_config = ConfigDict(extra="forbid", frozen=True)

    routes: dict[str, Any] = Field(default_factory=dict)  # from mitm_config.yaml only
    # Glob pattern -> `backend:model` or route name, first match in file order (mitm_config.yaml only).
    model_map: dict[str, Annotated[str, Field(min_length=1)]] = Field(default_factory=dict)
    keys: dict[str, KeyRing] = Field(default_factory=dict)
    # Where each non-default value came from, for the start-up summary ("--set", "env", "yaml").
    sources: dict[str, str] = Field(default_factory=dict)

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
        for name in ("redis_url", "database_url"):  # a log line may show the password either way
            password = urlsplit(getattr(self, name) or "").password
            out += [(f"{name} password", p) for p in {password, unquote(password or "")} if p]
        return out


def collect_keys(env: Mapping[str, str], backend: str) -> KeyRing:
    """The backend's key env name (<BACKEND>_API_KEY) or its numbered forms _1.._20: one form, never both."""
    base = SPECS[backend].key_env
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
        f"{spec.option} = {getattr(settings, spec.name)} (from {settings.sources.get(spec.name, '?')})"
        for spec in BASE_URLS
        if getattr(settings, spec.name) != spec.default
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
    unknown = sorted(set(yaml_data) - set(FIELDS) - {"routes", "model_map"})
    if unknown:
        raise SettingsError(
            f"{yaml_name}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}"
        )
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, f in FIELDS.items():
        if cli.get(f.option) is not None:
            values[name], sources[name] = cli[f.option], f"--set {f.option}"
        elif env.get(f.env, "").strip():
            values[name], sources[name] = env[f.env].strip(), f.env
        elif name in yaml_data and yaml_data[name] is not None:
            values[name], sources[name] = yaml_data[name], f"{yaml_name}: {name}"
    try:
        keys = {b.name: collect_keys(env, b.name) for b in BACKENDS}
        routes = yaml_data.get("routes") or {}
        if not isinstance(routes, dict):
            raise SettingsError(f"{yaml_name}: routes must be a mapping of route name to policy/elements")
        model_map = yaml_data.get("model_map") or {}
        if not isinstance(model_map, dict):
            raise SettingsError(f"{yaml_name}: model_map must be a mapping of name pattern to backend:model")
        model_map = {str(k): v for k, v in model_map.items()}
        return Settings(**values, keys=keys, sources=sources, routes=routes, model_map=model_map)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            name = str(err["loc"][0]) if err["loc"] else "?"
            where = sources.get(name, name)
            env_name = FIELDS[name].env if name in FIELDS else None
            label = f"{env_name or name} (from {where})" if name in sources else (env_name or name)
            shown = (
                "<hidden>"
                if name in ("proxy_api_key", "redis_url", "database_url")
                else repr(values.get(name))
            )
            problems.append(f"{label}: {err['msg']} (got {shown})")
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None

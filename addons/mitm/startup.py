"""What is decided once, at start-up: owner-only files, the options that say where keys go, and whether
the shared stores' servers let the proxy in."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from mitmproxy import ctx, exceptions

from addons.settings import BASE_URLS, Settings, custom_base_urls
from addons.stores.base import SharedState

log = logging.getLogger("llm_intercept")

# Options that decide where keys are sent (base URLs, and the files they may come from): start-up only.
# The shared stores are chosen once: a store swapped at run time would split the instances apart.
_SHARED_STORES = {"redis_url", "database_url", "llm_namespace"}
STARTUP_ONLY = frozenset({s.option for s in BASE_URLS} | {"llm_config", "llm_env_file"} | _SHARED_STORES)
_CHANGE_REFUSED = (
    "llm-intercept: refused a runtime change of %s: provider base URLs (and the files they come from) are "
    "read at start-up only, so no key can be redirected; restart the proxy to change them."
)
_CUSTOM_URLS = (
    "\n" + "!" * 100 + "\nllm-intercept: a provider base URL is not the provider's own:\n%s\n"
    "Every API key of that provider is sent there, starting now with model discovery. If you did not set "
    "this\n(a .env or mitm_config.yaml you did not write?), stop the proxy now.\n" + "!" * 100
)


def owner_only_files() -> None:
    """Everything this process writes (history and its -wal/-shm, state, --save flows) holds prompts:
    owner-only from the moment it exists, which no chmod after the fact can promise."""
    os.umask(0o077)
    # Except mitmproxy's --save file, opened before any script loads (run_proxy.sh sets the umask
    # before that): no flow is in it yet, so tightening it now still comes before the first prompt.
    saving = getattr(ctx.master.addons.get("save"), "current_path", None)
    if saving:
        with contextlib.suppress(OSError):  # gone or not ours: nothing to tighten
            os.chmod(saving, 0o600)


class StartupOnly:
    """Base URLs decide where every key goes: fixed once the proxy runs, whoever changes options later
    (mitmweb's `PUT /options`, the console, `set`)."""

    def __init__(self) -> None:
        self._values: dict[str, str | None] = {}

    def check(self, updated: set[str], started: bool) -> set[str]:
        """`updated` less the start-up-only names; raises OptionsError (and logs) on a real change."""
        values = {name: getattr(ctx.options, name) for name in STARTUP_ONLY}
        if not started:  # (re)recorded until a configuration succeeds
            self._values = values
            return updated
        changed = [f"{n}={v!r}" for n, v in sorted(values.items()) if v != self._values[n]]
        if changed:
            log.error(_CHANGE_REFUSED, ", ".join(changed))
            raise exceptions.OptionsError(_CHANGE_REFUSED % ", ".join(changed))
        # mitmproxy's rollback after a refusal re-sends the same names with their old values: no rebuild.
        return updated - STARTUP_ONLY


def announce_custom_base_urls(settings: Settings) -> None:
    if custom := custom_base_urls(settings):
        log.warning(_CUSTOM_URLS, "\n".join(f"  {line}" for line in custom))


def shared_state_refusal(servers: Sequence[SharedState]) -> str | None:
    """What the first shared store's server refuses (a bad URL, refused credentials, no answer), naming the
    setting, else None. Asked while options are validated, so that a refusal stops the start like any
    invalid option (exit status 1, no ready line). mitmproxy's loop runs but cannot be awaited there: the
    checks run on a loop of their own in a worker thread, the start waiting (their timeouts bound it)."""
    if not servers:
        return None

    async def first() -> str | None:
        for server in servers:
            if problem := await server.check():
                return problem
        return None

    with ThreadPoolExecutor(1, thread_name_prefix="llm-shared-check") as pool:
        return pool.submit(asyncio.run, first()).result()

"""The config store of a single proxy: the runtime configuration in memory, kept across restarts in a file.

The file holds only what commands change (default backend, interactive default, redaction, routes),
never a key. Writes are atomic (temp file + rename) with owner-only permissions. A corrupt or partly
invalid file is reported and left alone until the user makes a valid change.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any

from addons.stores.base import RuntimeConfig

log = logging.getLogger(__name__)
MAX_STATE_BYTES = 1024 * 1024  # a few settings and routes; anything bigger is not ours

# Field in the file -> the start-up setting it overrides.
PERSISTED = {
    "default_backend": "llm_backend",
    "interactive_mode": "interactive_mode",
    "redact_api_keys_in_prompts": "redact_api_keys_in_prompts",
}


class StateFile:
    def __init__(self, path: str | None) -> None:
        self.path = Path(path).expanduser() if path else None
        self.writable = True  # False while the file on disk is one we could not read
        self._lock = threading.Lock()
        self._pending: dict[str, Any] | None = None  # newest snapshot not yet handed to save()
        self._writer: threading.Thread | None = None

    def load(self, backends: tuple[str, ...]) -> tuple[dict[str, Any], list[str]]:
        """Valid entries and a list of problems (each naming the entry). Never raises."""
        if self.path is None or not (self.path.exists() or self.path.is_symlink()):
            return {}, []
        try:
            data = json.loads(_read_own_file(self.path).decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            self.writable = False
            why = e.strerror if isinstance(e, OSError) else e
            return {}, [
                f"{self.path}: unreadable ({why}); ignored, and left untouched until a setting changes"
            ]
        if not isinstance(data, dict):
            self.writable = False
            return {}, [
                f"{self.path}: expected a JSON object; ignored, and left untouched until a setting changes"
            ]
        valid: dict[str, Any] = {}
        problems: list[str] = []
        for name, value in data.items():
            if name == "default_backend" and value not in backends:
                problems.append(f"{self.path}: default_backend {value!r} is not one of {', '.join(backends)}")
            elif name in ("interactive_mode", "redact_api_keys_in_prompts") and not isinstance(value, bool):
                problems.append(f"{self.path}: {name} must be true or false, not {value!r}")
            elif name == "routes" and not isinstance(value, dict):
                problems.append(f"{self.path}: routes must be an object")
            elif name not in PERSISTED and name != "routes":
                problems.append(f"{self.path}: unknown entry {name!r}")
            else:
                valid[name] = value
        return valid, problems

    def save(self, snapshot: dict[str, Any]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".llm-state-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(snapshot, f, indent=2, sort_keys=True)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            self.writable = True
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            log.error("could not save runtime state to %s: %s", self.path, e)

    def save_later(self, snapshot: dict[str, Any]) -> None:
        """save() on a background thread: an fsync on a slow disk must not stall the event loop. A burst
        of changes coalesces (only the newest snapshot is written, in order); the thread is no daemon, so
        a write in flight finishes before the process exits."""
        if self.path is None:
            return
        with self._lock:
            self._pending = snapshot
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_pending, name="llm-state-writer")
                self._writer.start()

    def _write_pending(self) -> None:
        while True:
            with self._lock:
                snapshot, self._pending = self._pending, None
                if snapshot is None:
                    self._writer = None
                    return
            try:
                self.save(snapshot)
            except Exception:  # the next change must still find a writer
                log.exception("could not save runtime state to %s", self.path)

    def flush(self, timeout: float | None = None) -> None:
        """Wait for the snapshots handed to save_later to be on disk."""
        with self._lock:
            writer = self._writer
        if writer is not None:
            writer.join(timeout)


class JsonConfigStore:
    """ConfigStore: the live configuration is the one in memory; each put is saved to the state file by
    a background thread."""

    def __init__(self, file: StateFile, config: RuntimeConfig) -> None:
        self.file = file
        self.live = config

    async def get(self) -> RuntimeConfig:
        return self.live

    async def put(self, config: RuntimeConfig) -> None:
        self.live = config
        # Snapshot now, on the loop; the file is written by a background thread.
        self.file.save_later(config.snapshot())

    async def flush(self) -> None:
        await asyncio.to_thread(self.file.flush)


def _read_own_file(path: Path) -> bytes:
    """The bytes of a small regular file of ours that nobody else can write; OSError naming why not.
    Neither a FIFO (would block start-up), a device such as /dev/zero (endless), a symbolic link to one,
    nor a file another user could have planted or edited is read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise OSError(e.errno, "a symbolic link, which is not followed") from None
        raise
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if st.st_uid != os.geteuid():
            raise OSError(errno.EPERM, f"owned by uid {st.st_uid}, not by this user")
        if st.st_mode & 0o022:
            raise OSError(errno.EPERM, "writable by other users; chmod 600 it")
        data = f.read(MAX_STATE_BYTES + 1)
    if len(data) > MAX_STATE_BYTES:
        raise OSError(errno.EFBIG, f"larger than {MAX_STATE_BYTES} bytes")
    return data

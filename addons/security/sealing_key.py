"""The key that seals what the proxy hands clients to carry for it (Responses `encrypted_content`): kept in
the proxy's data folder so sealed items survive a restart, readable by its owner only."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)

KEY_BYTES = 32  # AES-256


def for_this_run() -> bytes:
    """A key that lives as long as the process: items sealed with it fail (400) after a restart."""
    return secrets.token_bytes(KEY_BYTES)


def load_or_create(path: Path) -> bytes:
    """The key in `path`, made on first use. An unusable folder costs only persistence: a key for this
    run is used instead (items sealed before a restart then fail with a clear 400)."""
    try:
        data = path.read_bytes()
        if len(data) == KEY_BYTES:
            return data
        log.warning("%s is not a %d-byte key; making a new one", path, KEY_BYTES)
    except FileNotFoundError:
        pass
    except OSError as e:
        log.warning("cannot read %s (%s); sealed items will not survive a restart", path, e.strerror)
        return for_this_run()
    key = for_this_run()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        os.replace(tmp, path)
    except OSError as e:
        log.warning("cannot write %s (%s); sealed items will not survive a restart", path, e.strerror)
    return key

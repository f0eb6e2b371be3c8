"""Runtime configuration that in-chat commands change, and the file that keeps it across restarts.

The file holds only what commands change (default backend, interactive default, redaction, routes),
never a key. Writes are atomic (temp file + rename) with owner-only permissions. A corrupt or partly
invalid file is reported and left alone until the user makes a valid change.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from addons.routing import Route

log = logging.getLogger(__name__)

# Field in the file -> the start-up setting it overrides.
PERSISTED = {
    "default_backend": "llm_backend",
    "interactive_mode": "interactive_mode",
    "redact_api_keys_in_prompts": "redact_api_keys_in_prompts",
}


@dataclass(slots=True)
class RuntimeConfig:
    default_backend: str
    interactive: bool
    redact: bool
    routes: dict[str, Route] = field(default_factory=dict)
    # What `unset` goes back to: the start-up values.
    base: dict[str, Any] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        """What goes into the state file: only values that differ from start-up, plus routes."""
        out: dict[str, Any] = {}
        current = {
            "default_backend": self.default_backend,
            "interactive_mode": self.interactive,
            "redact_api_keys_in_prompts": self.redact,
        }
        for name, value in current.items():
            if value != self.base.get(name):
                out[name] = value
        if self.routes:
            out["routes"] = {name: r.to_json() for name, r in self.routes.items()}
        return out


class StateFile:
    def __init__(self, path: str | None) -> None:
        self.path = Path(path).expanduser() if path else None
        self.writable = True  # False while the file on disk is one we could not read

    def load(self, backends: tuple[str, ...]) -> tuple[dict[str, Any], list[str]]:
        """Valid entries and a list of problems (each naming the entry). Never raises."""
        if self.path is None or not self.path.exists():
            return {}, []
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            self.writable = False
            return {}, [f"{self.path}: unreadable ({e}); ignored, and left untouched until a setting changes"]
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

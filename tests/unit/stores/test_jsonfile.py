"""The state file behind the JSON config store: atomic, private, tolerant, written off the event loop."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
from pathlib import Path

import pytest

from addons.stores.jsonfile import StateFile


def test_state_file_atomic_private_and_tolerant(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    sf = StateFile(str(path))
    sf.save({"default_backend": "gemini", "routes": {}})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sf.load(("openrouter", "gemini")) == ({"default_backend": "gemini", "routes": {}}, [])
    path.write_text(
        '{"default_backend": "claude", "interactive_mode": "yes", "redact_api_keys_in_prompts": false}'
    )
    valid, problems = sf.load(("openrouter", "gemini"))
    assert valid == {"redact_api_keys_in_prompts": False}
    assert any("default_backend 'claude'" in p for p in problems) and any(
        "interactive_mode" in p for p in problems
    )
    path.write_text("{not json")
    assert sf.load(("openrouter",))[0] == {} and not sf.writable
    assert path.read_text() == "{not json"  # left untouched


def test_state_is_written_off_the_calling_thread_and_coalesced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    sf = StateFile(str(path))
    release = threading.Event()
    fsync_threads: list[int] = []
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        fsync_threads.append(threading.get_ident())
        release.wait(10)  # a disk that takes its time
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)

    async def on_the_loop() -> int:
        for i in range(50):
            sf.save_later({"default_backend": "gemini", "n": i})
        return threading.get_ident()

    loop_thread = asyncio.run(asyncio.wait_for(on_the_loop(), 5))  # returns while fsync is blocked
    assert not path.exists() or json.loads(path.read_text()).get("n") != 49
    release.set()
    sf.flush(10)
    assert json.loads(path.read_text()) == {"default_backend": "gemini", "n": 49}  # the newest one
    assert fsync_threads and loop_thread not in fsync_threads
    assert len(fsync_threads) <= 2  # the first snapshot, then the newest: the burst was coalesced
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

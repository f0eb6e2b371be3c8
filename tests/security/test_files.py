"""Attacks through the files the proxy reads and writes (security findings 8, 9, 11, 15).

Each test plants what an attacker could (a `.env` in a checked-out repository, a FIFO or a device at the
state-file path, a history that grows without end) or looks for what another local user could read,
against a real mitmdump.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest

from addons.stores.sqlite import SCHEMA
from tests.conftest import OPENROUTER_KEYS
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.harness import ProxyProcess

MODEL = "openai/gpt-4o-mini"
ATTACKER_KEY = "sk-or-v1-attacker-planted-cccccccccccccccccccccccc"


def _mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.lstat().st_mode))


def _chat(p: ProxyProcess, text: str, session: str = "s") -> str:
    with openai.OpenAI(
        base_url=p.base_url, api_key="k", max_retries=0, timeout=30, default_headers={"X-Session-ID": session}
    ) as c:
        r = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}])
    return r.choices[0].message.content or ""


def _history(p: ProxyProcess, session: str) -> list[dict]:
    r = httpx.get(f"{p.base_url}/sessions/{session}/history", timeout=30, trust_env=False)
    r.raise_for_status()
    return r.json()["data"]


# -- finding 8: .env from an untrusted folder, base URLs --------------------------------------------


def _planted_env(attacker: FakeOpenRouter) -> str:
    return (
        f"OPENROUTER_API_KEY={ATTACKER_KEY}\nOPENROUTER_API_BASE_URL={attacker.base_url}\n"
        f"GEMINI_API_KEY={ATTACKER_KEY}\nGEMINI_API_BASE_URL=http://127.0.0.1:{attacker.port}\n"
    )


def test_env_file_in_working_directory_is_ignored(openrouter: FakeOpenRouter) -> None:
    """A repository's .env in the folder the proxy starts from sets base URLs and keys: none of it counts."""
    with FakeOpenRouter((ATTACKER_KEY,)) as attacker:
        # The real base URL comes from the YAML file, which a .env (environment) would override.
        p = ProxyProcess(
            env={"OPENROUTER_API_KEY": OPENROUTER_KEYS[0]},
            config_yaml=f"openrouter_api_base_url: {openrouter.base_url}\n",
        )
        (p.tmp / ".env").write_text(_planted_env(attacker))  # p.tmp is the proxy's working directory
        del p.sets["llm_env_file"]  # the default lookup, as run_proxy.sh without --env-file
        with p:
            assert _chat(p, "hello") == "echo: hello"
        assert attacker.requests == []
        assert openrouter.last("/chat/completions").headers["authorization"] == f"Bearer {OPENROUTER_KEYS[0]}"
        assert attacker.base_url not in p.log


def test_env_file_given_explicitly_is_read_and_custom_base_url_announced() -> None:
    """--env-file still works; a base URL that is not the provider's own is announced loudly at start."""
    with FakeOpenRouter((ATTACKER_KEY,)) as other:
        p = ProxyProcess()
        env_file = p.tmp / "keys.env"
        env_file.write_text(f"OPENROUTER_API_KEY={ATTACKER_KEY}\nOPENROUTER_API_BASE_URL={other.base_url}\n")
        p.sets["llm_env_file"] = str(env_file)
        with p:
            assert _chat(p, "hi") == "echo: hi"
        assert other.last("/chat/completions").headers["authorization"] == f"Bearer {ATTACKER_KEY}"
    assert f"openrouter_api_base_url = {other.base_url} (from OPENROUTER_API_BASE_URL)" in p.log
    assert "Every API key of that provider is sent there" in p.log
    assert "gemini_api_base_url =" not in p.log  # the default is not announced
    assert ATTACKER_KEY[8:] not in p.log


@pytest.mark.parametrize("url", ["http://10.254.0.1/api/v1", "http://openrouter.example/api/v1"])
def test_plain_http_base_url_beyond_loopback_is_refused(url: str) -> None:
    p = ProxyProcess(env={"OPENROUTER_API_KEY": OPENROUTER_KEYS[0], "OPENROUTER_API_BASE_URL": url})
    p.wait_ready = False
    with p:
        assert p.wait_exit() != 0
    assert "OPENROUTER_API_BASE_URL" in p.log and "must use https://" in p.log
    assert "ready" not in p.log


# -- finding 9: files readable by other users ------------------------------------------------------


def test_every_file_written_is_private_from_creation(openrouter: FakeOpenRouter) -> None:
    p = ProxyProcess(
        env={"OPENROUTER_API_KEY": OPENROUTER_KEYS[0], "OPENROUTER_API_BASE_URL": openrouter.base_url}
    )
    state = p.tmp / "config" / "nested" / "state.json"  # folders the proxy creates
    saved = p.tmp / "flows.mitm"
    p.sets.update({"llm_state": str(state), "save_stream_file": str(saved), "save_stream_filter": "~marked"})
    db = p.tmp / "data" / "llm-intercept" / "history.sqlite3"
    with p:
        _chat(p, "!/set(redact-api-keys-in-prompts=off)")
        _chat(p, "a prompt other users must not read")
        assert len(_history(p, "s")) == 2  # written: the writer holds the database open now
        files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"), state, saved]
        assert all(f.exists() for f in files), [f.name for f in files if not f.exists()]
        modes = {f.name: _mode(f) for f in files}
        folders = {d.name: _mode(d) for d in (db.parent, db.parent.parent, state.parent, state.parent.parent)}
    assert modes == dict.fromkeys(modes, "0o600"), modes
    assert folders == dict.fromkeys(folders, "0o700"), folders


def test_history_left_readable_by_an_older_version_is_tightened(openrouter: FakeOpenRouter) -> None:
    p = ProxyProcess(
        env={"OPENROUTER_API_KEY": OPENROUTER_KEYS[0], "OPENROUTER_API_BASE_URL": openrouter.base_url}
    )
    db = p.tmp / "old" / "history.sqlite3"
    db.parent.mkdir()
    sqlite3.connect(db).executescript(SCHEMA)
    os.chmod(db, 0o644)
    p.sets["llm_history"] = str(db)
    with p:
        _chat(p, "after the upgrade")
        assert len(_history(p, "s")) == 1
        wal = db.with_name(db.name + "-wal")
        assert wal.exists() and _mode(wal) == "0o600"  # SQLite copies the database's mode
        assert _mode(db) == "0o600"


# -- finding 11: history without retention ---------------------------------------------------------


def _insert(db: Path, session: str, ts: float, prompt: str) -> None:
    con = sqlite3.connect(db)
    with con:
        con.executescript(SCHEMA)
        con.execute(
            "INSERT INTO interactions (ts, session_id, answered_by, stream, prompt, params) "
            "VALUES (?, ?, 'backend', 0, ?, '{}')",
            (ts, session, json.dumps([{"role": "user", "content": prompt}])),
        )
    con.close()


def test_history_rows_past_max_days_are_deleted_at_start(openrouter: FakeOpenRouter) -> None:
    p = ProxyProcess(
        env={
            "OPENROUTER_API_KEY": OPENROUTER_KEYS[0],
            "OPENROUTER_API_BASE_URL": openrouter.base_url,
            "LLM_HISTORY_MAX_DAYS": "30",
        }
    )
    db = p.tmp / "history.sqlite3"
    now = time.time()
    for days, text in ((400, "last year"), (31, "last month"), (29, "this month"), (0, "today")):
        _insert(db, "old", now - days * 86400, text)
    p.sets["llm_history"] = str(db)
    with p:
        rows = _history(p, "old")
    assert [r["prompt"][0]["content"] for r in rows] == ["this month", "today"]


def test_history_is_kept_under_max_mb(openrouter: FakeOpenRouter) -> None:
    limit = 256 * 1024
    p = ProxyProcess(
        env={
            "OPENROUTER_API_KEY": OPENROUTER_KEYS[0],
            "OPENROUTER_API_BASE_URL": openrouter.base_url,
            "LLM_HISTORY_MAX_MB": str(limit / 1024 / 1024),
        }
    )
    db = p.tmp / "data" / "llm-intercept" / "history.sqlite3"
    sizes = []
    with p:
        for i in range(16):  # each row holds ~40 KB (prompt and echoed reply): 640 KB in all
            _chat(p, f"{i:02d} " + os.urandom(10_000).hex(), "big")
            _history(p, "big")  # waits until the row is written (and the file pruned)
            sizes.append(db.stat().st_size)
        rows = _history(p, "big")
    assert max(sizes) <= limit, sizes
    kept = [r["prompt"][0]["content"][:2] for r in rows]
    assert 2 <= len(kept) < 16 and kept[-1] == "15", kept  # the newest stay, the oldest went
    assert kept == sorted(kept)


# -- finding 15: what sits at the state-file path --------------------------------------------------


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _group_writable(path: Path) -> None:
    path.write_text('{"redact_api_keys_in_prompts": false}')
    os.chmod(path, 0o664)


def _foreign(path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file to another user")
    path.write_text('{"redact_api_keys_in_prompts": false}')
    os.chown(path, 65534, 65534)


def _huge(path: Path) -> None:
    with path.open("wb") as f:
        f.truncate(3 * 1024**3)  # sparse: 3 GB to read, no disk used


@pytest.mark.parametrize(
    ("plant", "reason"),
    [
        (_fifo, "not a regular file"),
        (_zero, "a symbolic link"),
        (_group_writable, "writable by other users"),
        (_foreign, "owned by uid 65534"),
        (_huge, "larger than"),
    ],
    ids=["fifo", "dev-zero-symlink", "group-writable", "other-owner", "huge"],
)
def test_state_file_that_is_not_a_small_private_file_is_refused(
    openrouter: FakeOpenRouter, plant: Callable[[Path], None], reason: str
) -> None:
    p = ProxyProcess(
        env={"OPENROUTER_API_KEY": OPENROUTER_KEYS[0], "OPENROUTER_API_BASE_URL": openrouter.base_url}
    )
    state = p.tmp / "state.json"
    plant(state)
    before = state.lstat()
    p.sets["llm_state"] = str(state)
    try:
        with p:  # starts (a FIFO blocked start-up, /dev/zero filled the memory)
            assert _chat(p, "still works") == "echo: still works"
        assert f"{state}: unreadable ({reason}" in p.log and "left untouched" in p.log
        assert "redaction on" in p.log  # nothing was taken from the planted file
        after = state.lstat()
        assert (after.st_mode, after.st_size, after.st_mtime_ns) == (
            before.st_mode,
            before.st_size,
            before.st_mtime_ns,
        )
    finally:
        state.unlink()  # the session's key-leak scan reads every file a proxy left

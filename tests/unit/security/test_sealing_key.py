"""The sealing key: made once, kept owner-only, reused after a restart; a folder it cannot use costs only
persistence."""

from __future__ import annotations

import stat
from pathlib import Path

from addons.security.sealing_key import KEY_BYTES, for_this_run, load_or_create


def test_made_once_owner_only_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "responses.key"
    key = load_or_create(path)
    assert len(key) == KEY_BYTES and path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create(path) == key  # a restart opens what it sealed before


def test_a_damaged_key_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "responses.key"
    path.write_bytes(b"short")
    key = load_or_create(path)
    assert len(key) == KEY_BYTES and path.read_bytes() == key


def test_an_unusable_folder_still_gives_a_key(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")  # the key's folder cannot be made: a file stands there
    key = load_or_create(blocker / "responses.key")
    assert len(key) == KEY_BYTES and blocker.read_text() == "x"


def test_a_key_that_is_a_folder_still_gives_a_key(tmp_path: Path) -> None:
    # Unreadable as a file (IsADirectoryError): this run's key, and the folder is left alone.
    (tmp_path / "responses.key").mkdir()
    assert len(load_or_create(tmp_path / "responses.key")) == KEY_BYTES


def test_keys_for_a_run_differ() -> None:
    assert for_this_run() != for_this_run()

"""tests/agents/install.py with a stand-in npm: one install however many processes ask at once, never a
half-installed folder, npm's own words when it fails, a skip only without Node."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agents.install import CODEX, ensure
from tests.harness import ROOT

# Installs what the real @openai/codex brings (a native binary under vendor/), slowly enough for a
# second process to arrive while it runs; notes each call in $NPM_CALLS; fails when $NPM_FAIL is set.
FAKE_NPM = """#!/bin/sh
echo "$@" >> "$NPM_CALLS"
sleep 0.5
if [ -n "$NPM_FAIL" ]; then echo "npm ERR! 404 Not Found - GET https://registry.example/pkg" >&2; exit 1; fi
mkdir -p "$3/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin"
touch "$3/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"
"""


@pytest.fixture
def fake_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with the stand-in npm and a node; returns the file npm notes its calls in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("npm", FAKE_NPM), ("node", "#!/bin/sh\nexit 0\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "npm-calls"
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("NPM_CALLS", str(calls))
    return calls


def test_two_processes_at_once_install_once(fake_npm: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    code = "import sys; from pathlib import Path; from tests.agents.install import CODEX, ensure; "
    code += "print(ensure(CODEX, Path(sys.argv[1])))"
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(cache)], env=env, stdout=subprocess.PIPE, text=True)
        for _ in "ab"
    ]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outputs[0] == outputs[1] and "vendor/x86_64-unknown-linux-musl/bin/codex" in outputs[0]
    (call,) = fake_npm.read_text().splitlines()
    assert call.endswith("--no-audit --no-fund --ignore-scripts @openai/codex@0.171.0")
    # Installed into a temporary folder beside the cache entry, then renamed: nothing else is left.
    assert sorted(p.name for p in cache.iterdir()) == ["codex-0.171.0", "codex-0.171.0.lock"]
    assert ensure(CODEX, cache) == ast.literal_eval(outputs[0])  # a later call finds it, without npm
    assert len(fake_npm.read_text().splitlines()) == 1


def test_a_failed_install_fails_with_npms_output_and_leaves_nothing(
    fake_npm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NPM_FAIL", "1")
    cache = tmp_path / "cache"
    with pytest.raises(pytest.fail.Exception, match="npm ERR! 404 Not Found"):
        ensure(CODEX, cache)
    assert [p.name for p in cache.iterdir()] == ["codex-0.171.0.lock"]
    monkeypatch.delenv("NPM_FAIL")
    assert ensure(CODEX, cache)[0].endswith("/bin/codex")  # the next attempt starts afresh


def test_without_node_the_agent_tests_skip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.skip.Exception, match="needs `node` on PATH"):
        ensure(CODEX, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()

"""Capture LLM flows to a file, then replay a session against another model."""

from __future__ import annotations

import subprocess
from pathlib import Path

import openai

from tests.conftest import OPENROUTER_KEYS
from tests.fakes.fake_gemini import DEFAULT_KEYS as GEMINI_KEYS
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.harness import ADDON, BIN, ROOT, ProxyProcess

MODEL = "openai/gpt-4o-mini"


def test_save_then_replay_session_against_gemini(openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    saved = tmp_path / "flows.mitm"
    with FakeGemini(keys=GEMINI_KEYS) as gemini:
        env = {
            "OPENROUTER_API_KEY": OPENROUTER_KEYS[0],
            "OPENROUTER_API_BASE_URL": openrouter.base_url,
            "GEMINI_API_KEY": GEMINI_KEYS[0],
            "GEMINI_API_BASE_URL": gemini.base_url,
        }
        sets = {"save_stream_file": str(saved), "save_stream_filter": "~marked"}
        with ProxyProcess(env=env, sets=sets) as p:
            turns = [("r1", "!/set(project=x) first question", False), ("r1", "second", True),
                     ("r2", "other session", False)]  # fmt: skip
            for session, text, stream in turns:
                c = openai.OpenAI(
                    base_url=p.base_url, api_key="k", max_retries=0, default_headers={"X-Session-ID": session}
                )
                r = c.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": text}], stream=stream
                )
                if stream:
                    list(r)
        data = saved.read_bytes()
        assert data and not any(k.encode() in data for k in (*OPENROUTER_KEYS, *GEMINI_KEYS))

        cmd = [str(BIN / "mitmdump"), "-n", "--set", "termlog_verbosity=warn", "--set", f"confdir={tmp_path}",
               "-s", str(ADDON), "-s", str(ROOT / "addons" / "replay.py"),
               "--set", f"llm_replay_file={saved}",
               "--set", "llm_replay_model=gemini:gemini-2.5-flash", "--set", "llm_replay_session=r1",
               "--set", f"llm_config={p.tmp / 'llm-settings.yaml'}"]  # fmt: skip
        run = subprocess.run(cmd, env={**p.env}, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        out = run.stdout + run.stderr
        assert run.returncode == 0, out
        replayed = [r.json() for r in gemini.requests if "generateContent" in r.path]
    assert "replaying 2 request(s)" in out and "done: 2 request(s) replayed" in out
    assert out.count("original  openrouter:openai/gpt-4o-mini") == 2
    assert out.count("replay  gemini:gemini-2.5-flash") == 2
    assert "echo: first question" in out and "echo: second" in out
    assert "tokens 7+5" in out  # the original's usage beside the replay's
    # The replayed prompt had its command stripped; the other session was not replayed.
    assert [r["contents"][0]["parts"][0]["text"] for r in replayed] == ["first question", "second"]
    assert not any(k in out for k in (*OPENROUTER_KEYS, *GEMINI_KEYS))


def test_launcher_help_and_bad_flags() -> None:
    r = subprocess.run([str(ROOT / "run_proxy.sh"), "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "replay FILE" in r.stdout and "--save FILE" in r.stdout
    r = subprocess.run(
        [str(ROOT / "run_proxy.sh"), "--mode", "sideways"], capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 2 and "--mode must be reverse or regular" in r.stderr
    r = subprocess.run(
        [str(ROOT / "run_proxy.sh"), "--frobnicate"], capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 2 and "unknown option '--frobnicate'" in r.stderr

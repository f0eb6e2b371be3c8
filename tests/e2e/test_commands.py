"""In-chat commands, sessions, interactive mode, redaction and history, end to end."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import OPENROUTER_KEYS
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.harness import ProxyProcess

MODEL = "openai/gpt-4o-mini"
SONNET = "anthropic/claude-3.5-sonnet"


def _client(proxy: ProxyProcess, session: str | None) -> openai.OpenAI:
    headers = {"X-Session-ID": session} if session else {}
    return openai.OpenAI(
        base_url=proxy.base_url, api_key="k", max_retries=0, timeout=20, default_headers=headers
    )


def ask(proxy: ProxyProcess, text: str | list, session: str | None = "s", **kw: object) -> str:
    c = _client(proxy, session)
    r = c.chat.completions.create(
        model=kw.pop("model", MODEL), messages=[{"role": "user", "content": text}], **kw
    )  # type: ignore[call-overload]
    return r.choices[0].message.content or ""


def ask_stream(proxy: ProxyProcess, text: str, session: str = "s") -> list[str]:
    c = _client(proxy, session)
    stream = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}], stream=True)
    return [ch.choices[0].delta.content or "" for ch in stream if ch.choices]


def upstream_calls(fake: FakeOpenRouter) -> list[dict]:
    return [r.json() for r in fake.requests if r.path.endswith("/chat/completions")]


def test_set_model_applies_to_session_and_is_stripped(
    proxy: ProxyProcess, openrouter: FakeOpenRouter
) -> None:
    assert ask(proxy, f"!/set(model=openrouter:{SONNET}) tell me", "m1") == "echo: tell me"
    sent = upstream_calls(openrouter)[-1]
    assert sent["model"] == SONNET
    assert sent["messages"][-1]["content"] == "tell me"
    ask(proxy, "again", "m1")
    assert upstream_calls(openrouter)[-1]["model"] == SONNET  # override sticks to the session
    ask(proxy, "other session", "m2")
    assert upstream_calls(openrouter)[-1]["model"] == MODEL
    assert "cleared" in ask(proxy, "!/unset(model)", "m1")
    ask(proxy, "after unset", "m1")
    assert upstream_calls(openrouter)[-1]["model"] == MODEL


def test_bare_model_uses_current_backend(proxy: ProxyProcess, openrouter: FakeOpenRouter) -> None:
    assert "model set to openrouter:" + SONNET in ask(proxy, f"!/set(model={SONNET})", "bare")
    ask(proxy, "x", "bare")
    assert upstream_calls(openrouter)[-1]["model"] == SONNET


def test_unknown_model_is_refused_with_closest_matches(
    proxy: ProxyProcess, openrouter: FakeOpenRouter
) -> None:
    reply = ask(proxy, "!/set(model=anthropic/claude-3.5-sonet, project=p1) hello", "bad")
    assert "not available on openrouter" in reply and SONNET in reply and "nothing was applied" in reply
    assert upstream_calls(openrouter) == []  # the prompt was not sent either
    assert "project=-" in ask(proxy, "!/status", "bad")  # project not half-applied


@pytest.mark.parametrize(
    ("command", "needle"),
    [
        ("!/set(backend=claude)", "unknown backend 'claude'"),
        ("!/set(interactive=maybe)", "true/false"),
        ("!/set(colour=red)", "cannot set 'colour'"),
        ("!/set(model=x", "')'"),
        ("!/unset()", "unset needs names"),
        ("!/help(frobnicate)", "no command 'frobnicate'"),
    ],
)
def test_bad_commands_get_clear_messages(
    proxy: ProxyProcess, openrouter: FakeOpenRouter, command: str, needle: str
) -> None:
    reply = ask(proxy, command, "errs")
    assert needle in reply, reply
    assert upstream_calls(openrouter) == []


def test_command_only_message_is_answered_by_proxy(proxy: ProxyProcess, openrouter: FakeOpenRouter) -> None:
    c = _client(proxy, "co")
    r = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "!/set(project=alpha)"}])
    assert r.choices[0].message.content == "project set to alpha (this session)"
    assert r.choices[0].finish_reason == "stop"
    parts = ask_stream(proxy, "!/unset(project)", "co")
    assert "".join(parts) == "project override cleared (this session)"
    assert upstream_calls(openrouter) == []


def test_project_is_sent_to_openrouter(proxy: ProxyProcess, openrouter: FakeOpenRouter) -> None:
    ask(proxy, "!/set(project=apollo) go", "proj")
    assert upstream_calls(openrouter)[-1]["project"] == "apollo"


def test_commands_in_old_messages_do_not_run_again(proxy: ProxyProcess, openrouter: FakeOpenRouter) -> None:
    c = _client(proxy, "old")
    c.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "user", "content": f"!/set(model=openrouter:{SONNET}) first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "second"},
        ],
    )
    sent = upstream_calls(openrouter)[-1]
    assert sent["model"] == MODEL  # the old command did not apply
    assert sent["messages"][0]["content"] == "first"  # ...but it does not leak to the model either
    assert "model=(request)" in ask(proxy, "!/status", "old")


def test_multipart_content_keeps_images(proxy: ProxyProcess, openrouter: FakeOpenRouter) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    content = [
        {"type": "text", "text": "!/set(project=pix)"},
        image,
        {"type": "text", "text": "what is this?"},
    ]
    assert ask(proxy, content, "mp") == "echo: what is this?"
    assert upstream_calls(openrouter)[-1]["messages"][0]["content"] == [
        image,
        {"type": "text", "text": "what is this?"},
    ]


def test_unknown_command_left_untouched_when_not_interactive(
    proxy: ProxyProcess, openrouter: FakeOpenRouter
) -> None:
    assert ask(proxy, "please run !/frobnicate(x=1) now", "unk") == "echo: please run !/frobnicate(x=1) now"


def test_help_lists_every_command_with_current_values(proxy: ProxyProcess) -> None:
    text = ask(proxy, "!/help", "help")
    for name in ("set", "unset", "hello", "help", "status"):
        assert f"!/{name}" in text
    assert "[now: model=(request)" in text
    one = ask(proxy, "!/help(set)", "help")
    assert one.startswith("!/set(") and "!/unset" not in one


def test_global_redaction_toggle(proxy: ProxyProcess, openrouter: FakeOpenRouter) -> None:
    key = OPENROUTER_KEYS[0]
    try:
        assert "redaction off (all sessions)" in ask(proxy, "!/set(redact-api-keys-in-prompts=false)", "g1")
        ask(proxy, f"my key {key}", "g2")
        assert key in upstream_calls(openrouter)[-1]["messages"][0]["content"]
    finally:
        assert "back to the start-up value (on)" in ask(proxy, "!/unset(redact-api-keys-in-prompts)", "g1")
    ask(proxy, f"my key {key}", "g2")
    assert key not in json.dumps(upstream_calls(openrouter)[-1])


def test_invalid_session_header(proxy: ProxyProcess) -> None:
    r = httpx.post(
        proxy.base_url + "/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]},
        headers={"x-session-id": "a" * 200},
        trust_env=False,
    )
    assert r.status_code == 400 and "X-Session-ID" in r.json()["error"]["message"]


# -- redaction -------------------------------------------------------------------------------------


def test_every_key_is_redacted_everywhere(proxy: ProxyProcess, openrouter: FakeOpenRouter) -> None:
    k1, k2 = OPENROUTER_KEYS
    c = _client(proxy, "redact")
    c.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": f"system knows {k1}"},
            {"role": "user", "content": [{"type": "text", "text": f"part {k2}"}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function",
                 "function": {"name": "f", "arguments": json.dumps({"key": k1})}}
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": f"result {k2}"},
            {"role": "user", "content": f"both {k1} and {k2}"},
        ],
    )  # fmt: skip
    sent = openrouter.requests[-1].body.decode()
    assert k1 not in sent and k2 not in sent
    assert sent.count("[REDACTED_API_KEY]") == 6


# -- interactive mode ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def interactive(openrouter: FakeOpenRouter) -> Iterator[ProxyProcess]:
    env = {
        "OPENROUTER_API_KEY": OPENROUTER_KEYS[0],
        "OPENROUTER_API_BASE_URL": openrouter.base_url,
        "INTERACTIVE_MODE": "true",
        "COMMAND_PREFIX": "##",
    }
    with ProxyProcess(env=env) as p:
        yield p


def test_interactive_banner_on_first_reply_then_not(interactive: ProxyProcess) -> None:
    first = ask(interactive, "hello", "i1")
    assert first.startswith("llm-intercept 0.1.0 · session i1") and "type ##help" in first
    assert first.endswith("echo: hello")
    assert ask(interactive, "again", "i1") == "echo: again"


def test_interactive_stream_banner_and_confirmations_come_first(interactive: ProxyProcess) -> None:
    parts = ask_stream(interactive, "##set(project=zeta) stream it", "i2")
    assert parts[0].startswith("llm-intercept") and "project set to zeta" in parts[0]
    assert "".join(parts[1:]) == "echo: stream it"


def test_interactive_unknown_command_is_reported(
    interactive: ProxyProcess, openrouter: FakeOpenRouter
) -> None:
    ask(interactive, "warm up", "i3")
    reply = ask(interactive, "##frobnicate now", "i3")
    assert "unknown command ##frobnicate" in reply
    assert upstream_calls(openrouter)[-1]["messages"][0]["content"] == "warm up"


def test_prefix_is_configurable(interactive: ProxyProcess, openrouter: FakeOpenRouter) -> None:
    ask(interactive, "##set(project=pp) x", "i4")
    assert upstream_calls(openrouter)[-1]["project"] == "pp"
    assert ask(interactive, "!/set(project=qq) y", "i4").endswith("echo: !/set(project=qq) y")


def test_switching_interactive_on_greets(proxy: ProxyProcess) -> None:
    ask(proxy, "hi", "sw")
    reply = ask(proxy, "!/set(interactive=on) hi again", "sw")
    assert (
        reply.startswith("llm-intercept")
        and "interactive mode on" in reply
        and reply.endswith("echo: hi again")
    )
    assert ask(proxy, "!/unset(interactive) third", "sw") == "echo: third"


def test_hello_with_no_keys_and_no_upstream() -> None:
    with ProxyProcess(env={}) as p:
        text = ask(p, "!/hello", None)
        assert "llm-intercept 0.1.0 · session default" in text
        assert "openrouter: 0 key(s), unavailable (no API key" in text
        assert "".join(ask_stream(p, "!/hello", "x")).startswith("llm-intercept")


# -- history ---------------------------------------------------------------------------------------


def test_history_endpoint_and_export(proxy: ProxyProcess) -> None:
    ask(proxy, "one", "hist")
    ask_stream(proxy, "two", "hist")
    ask(proxy, "!/set(project=h)", "hist")
    rows = httpx.get(proxy.base_url + "/sessions/hist/history", trust_env=False).json()["data"]
    assert [r["reply"] for r in rows] == ["echo: one", "echo: two", "project set to h (this session)"]
    assert [r["answered_by"] for r in rows] == ["backend", "backend", "proxy"]
    assert rows[0]["key_name"] in ("OPENROUTER_API_KEY_1", "OPENROUTER_API_KEY_2")
    assert rows[1]["stream"] is True and rows[0]["prompt"] == [{"role": "user", "content": "one"}]
    lines = httpx.get(
        proxy.base_url + "/sessions/hist/history?format=jsonl", trust_env=False
    ).text.splitlines()
    assert [json.loads(line)["reply"] for line in lines] == [r["reply"] for r in rows]


def test_history_survives_restart_and_records_long_streams(
    openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    env = {
        "OPENROUTER_API_KEY": OPENROUTER_KEYS[0],
        "OPENROUTER_API_BASE_URL": openrouter.base_url,
        "XDG_DATA_HOME": str(tmp_path),
    }
    openrouter.chunks = 200
    try:
        with ProxyProcess(env=env) as p:
            c = _client(p, "long")
            history = []
            for i in range(100):
                history += [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
            history[-1] = {"role": "user", "content": "x" * 400}
            text = "".join(
                ch.choices[0].delta.content or ""
                for ch in c.chat.completions.create(model=MODEL, messages=history, stream=True)
                if ch.choices
            )
            assert text == "echo: " + "x" * 400
            log = p.log
        with ProxyProcess(env=env) as p:
            rows = httpx.get(p.base_url + "/sessions/long/history", trust_env=False).json()["data"]
    finally:
        openrouter.chunks = 5
    assert len(rows) == 1 and rows[0]["reply"] == "echo: " + "x" * 400
    assert len(rows[0]["prompt"]) == 200
    db = tmp_path / "llm-intercept" / "history.sqlite3"
    assert oct(os.stat(db).st_mode & 0o777) == "0o600"
    dump = "\n".join(sqlite3.connect(db).iterdump())
    assert OPENROUTER_KEYS[0] not in dump and OPENROUTER_KEYS[0] not in log


def test_keys_never_in_history_db(proxy: ProxyProcess) -> None:
    ask(proxy, f"leak {OPENROUTER_KEYS[0]} and {OPENROUTER_KEYS[1]}", "leak")
    rows = httpx.get(proxy.base_url + "/sessions/leak/history", trust_env=False).text
    assert OPENROUTER_KEYS[0] not in rows and OPENROUTER_KEYS[1] not in rows
    db = Path(proxy.env["XDG_DATA_HOME"]) / "llm-intercept" / "history.sqlite3"
    dump = "\n".join(sqlite3.connect(db).iterdump())
    assert all(k not in dump and k[:-3] not in dump for k in OPENROUTER_KEYS)


def test_runtime_state_survives_restart(openrouter: FakeOpenRouter, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    env = {"OPENROUTER_API_KEY": OPENROUTER_KEYS[0], "OPENROUTER_API_BASE_URL": openrouter.base_url}
    with ProxyProcess(env=env, sets={"llm_state": str(state)}) as p:
        ask(p, "!/set(redact-api-keys-in-prompts=off)")
    assert json.loads(state.read_text()) == {"redact_api_keys_in_prompts": False}
    assert oct(os.stat(state).st_mode & 0o777) == "0o600"
    with ProxyProcess(env=env, sets={"llm_state": str(state)}) as p:
        assert "redaction off" in p.log
    # An option given explicitly at start wins over the saved file.
    with ProxyProcess(env=env, sets={"llm_state": str(state), "redact_api_keys_in_prompts": "true"}) as p:
        assert "redaction on" in p.log
    state.write_text("{oops")
    with ProxyProcess(env=env, sets={"llm_state": str(state)}) as p:
        assert "unreadable" in p.log and "left untouched" in p.log
        ask(p, "a normal prompt")
    assert state.read_text() == "{oops"


def test_backend_and_default_backend_commands(openrouter: FakeOpenRouter) -> None:
    from tests.fakes.fake_gemini import DEFAULT_KEYS as GEMINI_KEYS
    from tests.fakes.fake_gemini import FakeGemini

    with FakeGemini(keys=GEMINI_KEYS) as gemini:
        env = {
            "OPENROUTER_API_KEY": OPENROUTER_KEYS[0],
            "OPENROUTER_API_BASE_URL": openrouter.base_url,
            "GEMINI_API_KEY": GEMINI_KEYS[0],
            "GEMINI_API_BASE_URL": gemini.base_url,
        }
        with ProxyProcess(env=env) as p:
            # Session backend: bare model names go to Gemini for this session only.
            assert "backend set to gemini" in ask(p, "!/set(backend=gemini)", "b1")
            assert ask(p, "hi", "b1", model="gemini-2.5-flash") == "echo: hi"
            assert ask(p, "hi", "b2") == "echo: hi" and upstream_calls(openrouter)[-1]["model"] == MODEL
            # Default backend: every session, and /v1/models flips its prefixes.
            assert "default backend set to gemini (all sessions)" in ask(
                p, "!/set(default-backend=gemini)", "b2"
            )
            assert ask(p, "bare", "b3", model="gemini-2.5-pro") == "echo: bare"
            assert "models/gemini-2.5-pro:generateContent" in gemini.last_generate().path
            ids = [m.id for m in _client(p, None).models.list()]
            assert "gemini-2.5-flash" in ids and f"openrouter:{MODEL}" in ids
            assert "back to openrouter" in ask(p, "!/unset(default-backend)", "b2")
            ask(p, "again", "b3")
            assert upstream_calls(openrouter)[-1]["model"] == MODEL

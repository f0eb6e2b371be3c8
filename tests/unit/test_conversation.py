"""Command handling, sessions and the state file, without mitmproxy."""

from __future__ import annotations

import json
import os
import stat
import tracemalloc
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from addons.catalog import ModelCatalog
from addons.command_parser import format_command
from addons.conversation import prepare
from addons.redaction import Redactor
from addons.sessions import Session, SessionStore, valid_session_id
from addons.state import RuntimeConfig, StateFile

PREFIX = "!/"
BASE = {"default_backend": "openrouter", "interactive_mode": False, "redact_api_keys_in_prompts": True}


def catalog() -> ModelCatalog:
    c = ModelCatalog(("openrouter", "gemini"))
    c.set_models("openrouter", ["openai/gpt-4o", "anthropic/claude-3.5-sonnet"])
    c.set_models("gemini", ["gemini-2.5-flash", "gemini-2.5-pro"])
    return c


def runtime() -> RuntimeConfig:
    return RuntimeConfig("openrouter", False, True, base=dict(BASE))


def run(
    text: str | list,
    session: Session | None = None,
    rt: RuntimeConfig | None = None,
    interactive: bool = False,
):  # type: ignore[no-untyped-def]
    rt = rt or runtime()
    rt.interactive = interactive
    request = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": text}]}
    return prepare(
        request, json.dumps(request).encode(), session or Session("t"), rt, catalog(),
        {"openrouter": 1, "gemini": 0}, PREFIX, Redactor(["sk-secret-123456789"]),
        lambda s: f"BANNER {s.id}", lambda s: "STATUS",
    )  # fmt: skip


def test_all_or_nothing() -> None:
    s = Session("t")
    out = run("!/set(project=a) !/set(model=gemini:gemini-2.5-flsh)", s)
    assert "closest: gemini-2.5-flash" in (out.reply_text or "")
    assert s.project is None and s.model is None
    out = run("!/set(project=a) !/set(model=gemini:gemini-2.5-flash) go", s)
    assert out.reply_text is None and out.request["messages"][0]["content"] == "go"
    assert (s.project, s.model) == ("a", "gemini:gemini-2.5-flash")


def test_global_commands_mark_state_change() -> None:
    rt = runtime()
    out = run("!/set(default-backend=gemini)", rt=rt)
    assert out.changes_global and rt.default_backend == "gemini"
    assert rt.snapshot() == {"default_backend": "gemini"}
    run("!/unset(default-backend)", rt=rt)
    assert rt.snapshot() == {}


def test_unknown_model_when_discovery_failed_is_accepted() -> None:
    c = catalog()
    c.set_unavailable("gemini", "down")
    s = Session("t")
    request = {"model": "m", "messages": [{"role": "user", "content": "!/set(model=gemini:anything)"}]}
    prepare(request, json.dumps(request).encode(), s, runtime(), c, {}, PREFIX, Redactor([]), str, str)  # type: ignore[arg-type]
    assert s.model == "gemini:anything"


def test_redaction_covers_every_field() -> None:
    out = run("key sk-secret-123456789 here")
    assert out.redacted and "sk-secret" not in json.dumps(out.request)


segment = st.text(alphabet=st.characters(blacklist_characters="!"), max_size=40)
command = st.sampled_from(
    [("set", {"project": "x,y (z)"}, []), ("unset", {}, ["project"]), ("set", {"interactive": "off"}, [])]
)


@given(st.lists(st.tuples(segment, st.one_of(st.none(), command)), max_size=6))
@settings(max_examples=300, deadline=None)
def test_commands_never_lose_text(pieces: list) -> None:  # type: ignore[type-arg]
    text = "".join(
        seg + (" " + format_command(*cmd, prefix=PREFIX) + " " if cmd else "") for seg, cmd in pieces
    )
    out = run(text)
    if out.reply_text is None:
        forwarded = out.request["messages"][0]["content"]
        rest = forwarded if isinstance(forwarded, str) else ""
        pos = 0
        for seg, _ in pieces:
            for word in seg.split():
                found = rest.find(word, pos)
                assert found >= 0, (word, rest)
                pos = found + len(word)
    else:
        assert not "".join(seg for seg, _ in pieces).strip()


@given(st.text(max_size=300), st.booleans())
@settings(max_examples=300, deadline=None)
def test_random_text_never_crashes(text: str, interactive: bool) -> None:
    out = run(PREFIX + text, interactive=interactive)
    assert out.reply_text is not None or isinstance(out.request["messages"][0]["content"], (str, list))


def test_sessions_expire_and_stay_small() -> None:
    store = SessionStore(idle_ttl=1000, max_sessions=10_000)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(10_000):
        s = store.get(f"session-{i:06d}")
        s.model, s.project = "openrouter:openai/gpt-4o", "project"
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(store) == 10_000
    assert used < 10 * 1024 * 1024, used  # ~100 MB allowed by the spec; we are far below
    store.get("one-more")
    assert len(store) == 10_000 and store.peek("session-000000") is None
    store.idle_ttl = 0
    store.get("fresh")
    assert len(store) == 1


def test_session_ids() -> None:
    assert valid_session_id(None) == "default"
    assert valid_session_id(" abc ") == "abc"
    assert valid_session_id("a" * 129) is None
    assert valid_session_id("bad\x00id") is None


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

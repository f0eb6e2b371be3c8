"""The small holes (security findings 14 and 16), each attacked against a real mitmdump.

`replay` and terminal escapes in model output; `?limit=²`; malformed heads sent to the loopback relay;
`replay` with an access token and with a saved model listing; option changes that used to reset sessions,
cooldowns and what commands changed.
"""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.conftest import OPENROUTER_KEYS
from tests.fakes.fake_openrouter import FakeOpenRouter, completion
from tests.fakes.server import Script
from tests.harness import ADDON, BIN, ROOT, ProxyProcess, wait_for, web_ui

MODEL = "openai/gpt-4o-mini"
TOKEN = "proxy-access-token-for-replay-tests"
# Set the window title, clear the screen, put a command into the clipboard (OSC 52), an 8-bit CSI, a
# carriage return that would overwrite the line: what a web page can make a model repeat.
ESCAPES = "\x1b]0;pwned-title\x07\x1b[2J\x1b[H\x1b]52;c;cm0gLXJmIH4=\x07\x9b31m\rvisible text"


def _client(p: ProxyProcess, session: str = "s", token: str = "k") -> openai.OpenAI:
    return openai.OpenAI(
        base_url=p.base_url,
        api_key=token,
        max_retries=0,
        timeout=30,
        default_headers={"X-Session-ID": session},
    )


def _ask(p: ProxyProcess, text: str, session: str = "s", model: str = MODEL) -> str:
    with _client(p, session) as c:
        r = c.chat.completions.create(model=model, messages=[{"role": "user", "content": text}])
    return r.choices[0].message.content or ""


# -- finding 14 and 16 (replay): escapes, the access token, a saved model listing ------------------


@pytest.fixture(scope="module")
def replay_output(openrouter: FakeOpenRouter, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A session saved with --save by a proxy that requires a token: a model listing, then a chat whose
    answer carries terminal escapes; then `replay` of that file (whose answer carries them too)."""
    tmp = tmp_path_factory.mktemp("replay")
    saved = tmp / "flows.mitm"
    env = {"OPENROUTER_API_KEY": OPENROUTER_KEYS[0], "OPENROUTER_API_BASE_URL": openrouter.base_url}
    sets = {"save_stream_file": str(saved), "save_stream_filter": "~marked"}
    openrouter.reset()
    with ProxyProcess(env={**env, "PROXY_API_KEY": TOKEN}, sets=sets) as p, _client(p, "r", TOKEN) as c:
        assert MODEL in [m.id for m in c.models.list()]
        openrouter.enqueue(Script(json_body=completion("original: " + ESCAPES, MODEL)))
        c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "summarise the page"}])
    openrouter.enqueue(Script(json_body=completion("replayed: " + ESCAPES, MODEL)))
    cmd = [str(BIN / "mitmdump"), "-n", "--set", "termlog_verbosity=warn", "--set", f"confdir={tmp}",
           "-s", str(ADDON), "-s", str(ROOT / "addons" / "replay.py"), "--set", f"llm_replay_file={saved}",
           "--set", f"llm_config={p.tmp / 'llm-settings.yaml'}"]  # fmt: skip
    run = subprocess.run(cmd, env=p.env, cwd=tmp, capture_output=True, text=True, timeout=60)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    return out


def test_replay_sends_the_token_and_skips_flows_that_are_not_chats(replay_output: str) -> None:
    assert "replaying 1 request(s)" in replay_output and "done: 1 request(s) replayed" in replay_output
    assert "error 401" not in replay_output and "Traceback" not in replay_output
    assert TOKEN not in replay_output


def test_replay_strips_terminal_escapes_from_model_output(replay_output: str) -> None:
    # What is left of the sequences is inert text; the carriage return was taken for a space by the wrap.
    assert "original: ]0;pwned-title[2J[H]52;c;cm0gLXJmIH4=31m" in replay_output
    assert "replayed: ]0;pwned-title[2J[H]52;c;cm0gLXJmIH4=31m" in replay_output
    assert "visible text" in replay_output
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", replay_output), repr(replay_output)


# -- finding 16: ?limit=², the relay's malformed heads, option changes ----------------------------


@pytest.mark.parametrize("limit", ["²", "٣", "0" * 5000 + "1", "-1", "1e3"])
def test_history_limit_that_is_no_plain_number_is_400(http: httpx.Client, limit: str) -> None:
    r = http.get("/v1/sessions/default/history", params={"limit": limit})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "limit"


def _listening_ports(pid: int) -> set[int]:
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, timeout=10, check=True).stdout
    return {int(m.group(1)) for line in out.splitlines() if f"pid={pid}," in line
            for m in [re.search(r"127\.0\.0\.1:(\d+)", line)] if m}  # fmt: skip


@pytest.fixture(scope="module")
def relay_proxy(openrouter: FakeOpenRouter) -> Iterator[tuple[ProxyProcess, int]]:
    env = {"OPENROUTER_API_KEY": OPENROUTER_KEYS[0], "OPENROUTER_API_BASE_URL": openrouter.base_url}
    with ProxyProcess(env=env) as p:
        assert p.proc
        ports = _listening_ports(p.proc.pid) - {p.reverse_port, p.proxy_port}
        assert len(ports) == 1, ports  # the stream relay, on a port of its own choosing
        yield p, ports.pop()


@pytest.mark.parametrize(
    "head",
    [
        b"GET /relay/x HTTP/1.1\r\ncontent-length: abc\r\n\r\n",
        b"GET /relay/x HTTP/1.1\r\ncontent-length: -5\r\n\r\n",
        b"GET /relay/x HTTP/1.1\r\ncontent-length: 99999999999999\r\n\r\n",
        b"\x00\xff\xfe garbage\r\n\r\n",
        b"GET\r\n\r\n",
    ],
    ids=["letters", "negative", "huge", "binary", "no-path"],
)
def test_relay_answers_a_malformed_head_with_one_log_line(
    relay_proxy: tuple[ProxyProcess, int], head: bytes
) -> None:
    p, port = relay_proxy
    before = len(p.lines)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head)
        answer = b""
        while chunk := s.recv(4096):  # the relay closes after answering
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b'"type":"invalid_request_error"' in answer
    assert wait_for(lambda: any("relay: malformed request" in line for line in p.lines[before:]))
    new = p.lines[before:]
    assert not any("Traceback" in line or "Unhandled exception" in line for line in new), new
    # Streams still go through the relay.
    with _client(p) as c:
        text = "".join(
            ch.choices[0].delta.content or ""
            for ch in c.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "after"}], stream=True
            )
            if ch.choices
        )
    assert text == "echo: after"


def test_option_change_keeps_sessions_cooldowns_rotation_and_commands(openrouter: FakeOpenRouter) -> None:
    env = {
        "OPENROUTER_API_KEY_1": OPENROUTER_KEYS[0],
        "OPENROUTER_API_KEY_2": OPENROUTER_KEYS[1],
        "OPENROUTER_API_BASE_URL": openrouter.base_url,
    }
    other = "anthropic/claude-3.5-sonnet"
    with ProxyProcess(env=env, web=True) as p:
        _ask(p, "!/set(project=kept) !/set(redact-api-keys-in-prompts=off)", "keep")
        _ask(p, "!/create-failover-route(name=kept-route, policy=m)", "keep")
        # KEY_1 answers 429 and cools down for this model; KEY_2 answers.
        rate_limited = {"error": {"code": 429, "message": "Rate limit exceeded"}}
        openrouter.enqueue(Script(status=429, json_body=rate_limited, headers={"retry-after": "600"}))
        assert _ask(p, "one", "keep") == "echo: one"
        # Rotation on another model: KEY_2, then KEY_1; a reset rotation would start at KEY_1 again.
        _ask(p, "two", "keep", other)
        _ask(p, "three", "keep", other)
        keys = [
            r.headers["authorization"][7:] for r in openrouter.requests if r.path.endswith("/completions")
        ]
        assert keys[-2:] == [OPENROUTER_KEYS[1], OPENROUTER_KEYS[0]]

        ready = len([line for line in p.lines if "ready:" in line])
        with web_ui(p) as ui:
            ui.put("/options", json={"cooldown_seconds": "61"}).raise_for_status()
        # The service was rebuilt (discovery ran again).
        assert wait_for(lambda: len([line for line in p.lines if "ready:" in line]) > ready, timeout=30)

        _ask(p, "four", "keep", other)
        assert openrouter.requests[-1].headers["authorization"][7:] == OPENROUTER_KEYS[1]
        status = _ask(p, "!/status", "keep")
    assert "this session: keep: model=(request), backend=openrouter, project=kept" in status
    assert f"openrouter:{MODEL} OPENROUTER_API_KEY_1" in status  # still cooling down
    assert "kept-route" in status and "redaction: off" in status

"""Findings 7, 12, 13 and acceptance 2: no piece of a key leaks, whatever the path.

One real mitmdump with debug logging, the full flow dump (`flow_detail=4`) and `save_stream_file`, both
fake providers, and every path that used to leak: errors that echo the key (a 401, a 500 on every key, a
500 whose excerpt cuts the key, an error chunk inside a 200 stream, a Gemini error event shortened mid-key),
a prompt with the key with redaction on and off, the key JSON-escaped (`\\u002d`), the key in an unlisted
`api-key` header and as a model name. Then the fragment scan (any 8 characters of any key, at any offset,
escaped or not) runs over every response, the proxy's output, saved flows, history with its -wal/-shm and
the state file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.fake_gemini import FakeGemini, error_json
from tests.fakes.fake_gemini import Reply as GeminiReply
from tests.fakes.fake_openrouter import FakeOpenRouter, stream_events
from tests.fakes.server import Script
from tests.harness import ProxyProcess, leaks, response_leaks, scan_leftovers, wait_for

OR_KEYS = (
    "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",
    "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",
)
GM_KEY = "AIzaSyhSK5D_GR5gnE3p3t-JeS7adu0q7_ycSow"
TOKEN = "llmi-token-xdBidc3Z5a-QrIMTRSnMdmxPMyGr4IWV"
SECRETS = [*OR_KEYS, GM_KEY, TOKEN]
OR_MODEL = "openai/gpt-4o-mini"
GM_MODEL = "gemini:gemini-2.5-flash"


def escaped(key: str) -> str:
    """The key as JSON may spell it: every '-' as \\u002d (decodes to the very same key)."""
    return key.replace("-", "\\u002d")


class Run:
    """The proxy plus every response it gave, each scanned as it arrives."""

    def __init__(self, proxy: ProxyProcess, openrouter: FakeOpenRouter, gemini: FakeGemini) -> None:
        self.proxy, self.openrouter, self.gemini = proxy, openrouter, gemini
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{proxy.reverse_port}",
            headers={"authorization": f"Bearer {TOKEN}", "x-session-id": "leaks"},
            timeout=30,
            trust_env=False,
        )
        self.hits: dict[str, list[str]] = {}

    def send(self, label: str, method: str, path: str, **kw: object) -> httpx.Response:
        r = self.http.request(method, path, **kw)  # type: ignore[arg-type]
        if found := response_leaks(r, SECRETS):
            self.hits[label] = found
        return r

    def chat(
        self, label: str, text: str, model: str = OR_MODEL, stream: bool = False, **kw: object
    ) -> httpx.Response:
        body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]}
        return self.send(label, "POST", "/v1/chat/completions", json=body, **kw)

    def raw_chat(self, label: str, raw: str, stream: bool = False) -> httpx.Response:
        """A body written by hand, so the key can be JSON-escaped in it."""
        message = f'{{"role": "user", "content": "{raw}"}}'
        body = f'{{"model": "{OR_MODEL}", "stream": {json.dumps(stream)}, "messages": [{message}]}}'
        return self.send(
            label, "POST", "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
        )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    with FakeOpenRouter(OR_KEYS) as openrouter, FakeGemini(keys=(GM_KEY,)) as gemini:
        env = {
            "OPENROUTER_API_KEY_1": OR_KEYS[0],
            "OPENROUTER_API_KEY_2": OR_KEYS[1],
            "OPENROUTER_API_BASE_URL": openrouter.base_url,  # type: ignore[attr-defined]
            "GEMINI_API_KEY": GM_KEY,
            "GEMINI_API_BASE_URL": gemini.base_url,  # type: ignore[attr-defined]
            "PROXY_API_KEY": TOKEN,
            "PROXY_TIMEOUT": "10",
        }
        p = ProxyProcess(env=env)
        p.sets.update(
            termlog_verbosity="debug",
            flow_detail="4",
            save_stream_file=str(p.tmp / "flows.mitm"),
            llm_state=str(p.tmp / "state.json"),
        )
        with p:
            yield Run(p, openrouter, gemini)  # type: ignore[arg-type]


def test_no_key_fragment_anywhere(run: Run) -> None:
    p, ofake, gfake = run.proxy, run.openrouter, run.gemini
    key = OR_KEYS[0]

    # Redaction on: a prompt with the key, plain, streamed, JSON-escaped; the key in an unlisted header.
    assert run.chat("prompt", f"my key is {key} ok").status_code == 200
    assert run.chat("prompt stream", f"my key is {key} ok", stream=True).status_code == 200
    assert run.raw_chat("escaped prompt", f"escaped {escaped(key)} ok").status_code == 200
    # Failure messages name keys by their first characters only (`leaks`), never print them.
    sent = json.loads(ofake.last("/chat/completions").body)["messages"][0]["content"]
    assert not leaks(sent.encode(), [key]), "finding 12: the escaped key went upstream"
    assert run.chat("api-key header", "hi", headers={"api-key": key}).status_code == 200
    # The key as a model name: the error names the model.
    assert run.send("model lookup", "GET", f"/v1/models/{key}").status_code == 404

    # Provider errors that echo the key: a final 401, then a 500 on every key (the last one a non-JSON
    # body whose 200-character excerpt ends 60 characters into the key, as in the 72-of-73 leak).
    ofake.enqueue(
        Script(401, {"error": {"code": 401, "message": "Incorrect API key provided: {KEY}"}}, echo_key=True)
    )
    assert run.chat("401 echo", "hi").status_code == 401
    ofake.enqueue(
        Script(
            500,
            {"error": {"code": 500, "message": "Internal error for {KEY}", "metadata": {"key": "{KEY}"}}},
            echo_key=True,
        ),
        Script(500, raw_body=b"<html>" + b"x" * 134 + b"{KEY}</html>", echo_key=True),
    )
    assert run.chat("500 on every key", "hi").status_code == 500
    # An error chunk inside a 200 stream that quotes the key, once plain and once JSON-escaped.
    for label, spelled in (
        ("stream error chunk", "{KEY}"),
        ("escaped stream error chunk", escaped(OR_KEYS[1])),
    ):
        chunk = json.dumps({"error": {"code": 502, "message": f"provider failed with key {spelled}"}})
        events = [
            *stream_events("partial", OR_MODEL)[:1],
            b"data: " + chunk.replace("\\\\", "\\").encode() + b"\n\n",
        ]
        ofake.enqueue(Script(events=events, echo_key=True))
        r = run.chat(label, "hi", stream=True)
        assert r.status_code == 200 and b"provider failed" in r.content

    # Gemini: an error event mid-stream that quotes the key.
    gfake.enqueue(
        GeminiReply(error_after=1, error=error_json(500, "INTERNAL", f"quota of key {GM_KEY} spent"))
    )
    r = run.chat("gemini error event", "hi", model=GM_MODEL, stream=True)
    assert r.status_code == 200 and b"INTERNAL" in r.content
    assert run.chat("gemini plain", f"gemini {GM_KEY} ok", model=GM_MODEL).status_code == 200

    # Redaction off (a global command, saved to the state file): the key goes upstream as the user
    # asked, yet neither the answer, the flow nor anything saved carries it.
    assert run.chat("redaction off", "!/set(redact-api-keys-in-prompts=off)").status_code == 200
    assert run.chat("prompt, redaction off", f"unredacted {key} ok").status_code == 200
    assert leaks(ofake.last("/chat/completions").body, [key]), "redaction was not off: this proves nothing"
    ofake.enqueue(Script(events=stream_events("fine", OR_MODEL)))
    assert run.chat("stream, redaction off", f"unredacted {key} ok", stream=True).status_code == 200
    assert run.raw_chat("escaped, redaction off", f"escaped {escaped(key)} ok").status_code == 200
    assert run.chat("redaction on", "!/set(redact-api-keys-in-prompts=on)").status_code == 200

    assert not run.hits, f"keys in responses: {run.hits}"
    # History (and its -wal/-shm) and the state file while the proxy runs, then everything it left.
    assert run.send("history", "GET", "/v1/sessions/leaks/history").status_code == 200
    assert not run.hits, f"keys in the history answer: {run.hits}"
    files = {f.name for f in p.tmp.rglob("*") if f.is_file()}
    assert {"history.sqlite3-wal", "state.json"} <= files, files
    assert not scan_leftovers(p), f"keys while running: {scan_leftovers(p)}"
    p.stop()
    assert (p.tmp / "flows.mitm").stat().st_size > 0
    assert wait_for(lambda: "x-goog-api-key: ********" in p.log, 10), "the flow dump printed no headers"
    assert not scan_leftovers(p), f"keys left behind: {scan_leftovers(p)}"


def test_the_scan_finds_every_fragment(tmp_path: Path) -> None:
    """The scan itself must fail on a leak: any 8 characters of the secret part, at any offset, escaped
    or not; the public prefix alone is no leak."""
    key = OR_KEYS[0]
    for i in range(9, len(key) - 8):
        assert leaks(f"..{key[i : i + 8]}..".encode(), [key]), i
    assert leaks(escaped(key)[:40].encode(), [key])
    assert not leaks(b"OpenRouter keys start with sk-or-v1- and Gemini keys with AIza", SECRETS)
    assert not leaks(key[9:16].encode(), [key])

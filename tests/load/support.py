"""Shared pieces of the load campaign and the fuzz run: sizes, fault-scripting fakes, clients, checks.

Faults are chosen per request, not from a shared queue: a prompt carrying `FAULT:<kind>` makes the fake
upstream misbehave on the first attempt it sees for that prompt (`FAULT:<kind>*`: on every attempt), so
concurrent clients never take each other's faults and each request knows what it must get back.
Kinds: 429, 500, 503, slow (headers later than PROXY_TIMEOUT), reset (closed before any answer),
midreset (cut mid-answer), badjson (a 200 with malformed JSON), truncated (SSE that ends without
finish/[DONE]), wrongtype (a 200 text/html page), watch / quiet (a long stream that records when the
proxy let go of it; quiet: silent for QUIET s after its first event), mute (no answer at all for QUIET s,
recording whether the proxy let go meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import select
import socket
import statistics
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import openai

from tests.fakes.fake_gemini import FakeGemini, rate_limit_body, sse_event
from tests.fakes.fake_gemini import last_user_text as gemini_text
from tests.fakes.fake_openrouter import FakeOpenRouter, stream_events
from tests.fakes.server import Recorded, Script
from tests.harness import leaks

FULL = os.environ.get("LLM_LOAD", "").strip().lower() == "full"
SIZE = "full" if FULL else "short"

OPENROUTER_KEYS = (
    "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",
    "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",
    "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",
)
GEMINI_KEYS = (
    "AIzaSyJFju8APzLb437AZTZAeAmsX4kqjDB1qsZ",
    "AIzaSyY6uE_uP0pWAmQZPb-dCIMnqYB2lgjhgwE",
)
OR_MODEL = "openai/gpt-4o-mini"
GEMINI_MODEL = "gemini-2.5-flash"
# Gemini model ids the fake accepts as aliases of gemini-2.5-flash: a 429 rests (model, key), so
# rate-limit faults use a model of their own and never cool down the keys the other clients use.
GEMINI_ALIAS = "gemini-load-"
PROXY_TIMEOUT = 2.0  # seconds, for the proxies fault runs go through
# A "slow" upstream answers this late: far beyond the proxy's timeout, even when a busy machine delays it.
SLOW_HEADERS = PROXY_TIMEOUT + 4.0

QUIET = 8.0  # seconds a "quiet" upstream stays silent after its first event (a model thinking)
HTML = b"<html><body>Bad gateway</body></html>"
FAULT = re.compile(r"FAULT:([a-z0-9]+)(\*?)")


def env_for(openrouter: FakeOpenRouter, gemini: FakeGemini, **extra: str) -> dict[str, str]:
    env = {f"OPENROUTER_API_KEY_{i + 1}": k for i, k in enumerate(OPENROUTER_KEYS)}
    env |= {f"GEMINI_API_KEY_{i + 1}": k for i, k in enumerate(GEMINI_KEYS)}
    env |= {
        "OPENROUTER_API_BASE_URL": openrouter.base_url,
        "GEMINI_API_BASE_URL": gemini.base_url,
        "LLM_DISCOVERY_TIMEOUT": "10",
    }
    return env | extra


# ---------------------------------------------------------------------------------------------------
# Fakes that misbehave on request, and notice when the proxy lets go of them
# ---------------------------------------------------------------------------------------------------


@dataclass
class StreamWatch:
    """A long upstream stream: when it started, and when its connection broke (None: still writing)."""

    started: float
    broken: float | None = None
    finished: bool = False


class _Faults:
    """Mixin: per-prompt fault decisions, long watched streams, no unbounded request log."""

    def _init_faults(self) -> None:
        self.attempts: Counter[str] = Counter()  # prompt -> attempts seen
        self.watches: dict[str, StreamWatch] = {}  # prompt -> its long stream
        self.served = 0
        self.recent: deque[bytes] = deque(maxlen=200)  # the latest request bodies, for leak checks
        self._flock = threading.Lock()

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        # As FakeServer's, without keeping every request (a full run would hold tens of thousands).
        length = int(h.headers.get("content-length") or 0)
        body = h.rfile.read(length) if length else b""
        self.recent.append(body)
        rec = Recorded(h.command, h.path, {k.lower(): v for k, v in h.headers.items()}, body, 0.0)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.handle(h, rec)  # type: ignore[attr-defined]

    def fault_for(self, text: str) -> str | None:
        """The fault this attempt must get: `FAULT:x` on the first attempt only, `FAULT:x*` on all."""
        m = FAULT.search(text)
        with self._flock:
            self.served += 1
            n = self.attempts[text]
            self.attempts[text] = n + 1
        if m is None or (n > 0 and not m.group(2)):
            return None
        return m.group(1)

    def watched_stream(self, h: BaseHTTPRequestHandler, text: str, events: list[bytes], quiet: float) -> None:
        """A long stream, recording when the proxy closed the connection on us. Without `quiet`, the
        events go out 0.05 s apart; with it, the first event, then `quiet` s of silence (watching the
        socket for the proxy closing it), then the rest."""
        watch = StreamWatch(time.monotonic())
        with self._flock:
            self.watches[text] = watch
        sock = h.connection
        try:
            h.send_response(200)
            h.send_header("content-type", "text/event-stream")
            h.send_header("transfer-encoding", "chunked")
            h.end_headers()
            h.wfile.flush()
            for i, ev in enumerate(events):
                h.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
                h.wfile.flush()
                end = time.monotonic() + (quiet if quiet and i == 0 else 0.05)
                while (left := end - time.monotonic()) > 0:
                    readable, _, _ = select.select([sock], [], [], min(left, 0.05))
                    if readable and not sock.recv(1, socket.MSG_PEEK):
                        raise ConnectionResetError("the proxy closed the connection")
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
            watch.finished = True
        except OSError:
            watch.broken = time.monotonic()
            h.close_connection = True

    def mute(self, h: BaseHTTPRequestHandler, text: str) -> bool:
        """Say nothing for QUIET s (a provider queueing the request), watching the socket for the proxy
        closing it. True: still wanted, answer now; False: the proxy let go (recorded in `watches`)."""
        watch = StreamWatch(time.monotonic())
        with self._flock:
            self.watches[text] = watch
        sock, end = h.connection, time.monotonic() + QUIET
        while (left := end - time.monotonic()) > 0:
            readable, _, _ = select.select([sock], [], [], min(left, 0.05))
            if readable and not sock.recv(1, socket.MSG_PEEK):
                watch.broken = time.monotonic()
                h.close_connection = True
                return False
        watch.finished = True
        return True

    @staticmethod
    def cut_body(h: BaseHTTPRequestHandler, body: bytes) -> None:
        """A 200 that promises `body` and breaks off half-way (connection reset mid-answer)."""
        h.send_response(200)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(body)))
        h.end_headers()
        h.wfile.write(body[: len(body) // 2])
        h.wfile.flush()
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)


class LoadOpenRouter(_Faults, FakeOpenRouter):
    def __init__(self) -> None:
        super().__init__(OPENROUTER_KEYS)
        self._init_faults()
        self.delay = 0.01  # between stream events: streams stay open a while, so they overlap

    def handle(self, h: BaseHTTPRequestHandler, rec: Recorded) -> None:
        if not (rec.method == "POST" and rec.path.startswith("/api/v1/chat/completions")):
            super().handle(h, rec)
            return
        if not self._authorised(rec):
            self.send_json(h, 401, {"error": {"code": 401, "message": "No auth credentials found"}})
            return
        try:
            body = rec.json()
            text = _openrouter_text(body)
        except (ValueError, TypeError, AttributeError):
            self.send_json(h, 400, {"error": {"code": 400, "message": "fake: unreadable request"}})
            return
        stream = body.get("stream") is True
        model = str(body.get("model"))
        fault = self.fault_for(text)
        if fault is None:
            options = body.get("stream_options")
            self._echo(
                h,
                {
                    "model": model,
                    "stream": stream,
                    "messages": [{"role": "user", "content": text}],
                    "stream_options": options if isinstance(options, dict) else None,
                },
            )
            return
        events = [b": OPENROUTER PROCESSING\n\n", *stream_events("echo: " + text, model, 5, body)]
        if fault == "mute":
            if self.mute(h, text):
                self._echo(
                    h, {"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]}
                )
        elif fault in ("watch", "quiet"):
            self.watched_stream(
                h, text, [events[1], *(events[2:3] * 200), *events[-2:]], QUIET * (fault == "quiet")
            )
        elif fault == "midreset" and not stream:
            self.cut_body(h, json.dumps(_completion("echo: " + text, model)).encode())
        else:
            self.play(h, _openrouter_script(fault, events))


def _openrouter_text(body: Any) -> str:
    """The last user text, whatever shape the content has (the fuzz run sends odd but valid ones)."""
    for msg in reversed(body.get("messages") or []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, list):
                return " ".join(
                    str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
                )
            return content if isinstance(content, str) else ""
    return ""


def _completion(text: str, model: str) -> dict[str, Any]:
    return {
        "id": "gen-load",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _openrouter_script(fault: str, events: list[bytes]) -> Script:
    err = {"error": {"code": 0, "message": f"fake fault {fault}"}}
    return {
        "429": Script(status=429, json_body=err, headers={"retry-after": "1"}),
        "500": Script(status=500, json_body=err),
        "503": Script(status=503, json_body=err),
        "slow": Script(header_delay=SLOW_HEADERS, json_body=err),
        "reset": Script(drop_before_headers=True),
        "midreset": Script(events=events, drop_after=3),
        "badjson": Script(raw_body=b'{"id": "gen-bad", "choices": [{"message": {"content": "ech'),
        "truncated": Script(events=events[:3]),  # no finish chunk, no [DONE], clean end of body
        "wrongtype": Script(raw_body=HTML, headers={"content-type": "text/html"}),
    }[fault]  # fmt: skip


class LoadGemini(_Faults, FakeGemini):
    def __init__(self) -> None:
        super().__init__(GEMINI_KEYS, chunks=3, delay=0.01)
        self._init_faults()

    def _generate(
        self, h: BaseHTTPRequestHandler, rec: Recorded, model: str, stream: bool, sse: bool
    ) -> None:
        if model.startswith(GEMINI_ALIAS):
            model = GEMINI_MODEL
        try:
            text = gemini_text(json.loads(rec.body or b"null"))
        except (ValueError, TypeError, AttributeError):
            text = ""
        fault = self.fault_for(text)
        if fault is None:
            super()._generate(h, rec, model, stream, sse)
            return
        meta = {"modelVersion": model, "responseId": "fake-load"}

        def ev(t: str, final: bool = False) -> bytes:
            cand: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": t}]}, "index": 0}
            if final:
                cand["finishReason"] = "STOP"
            return sse_event({"candidates": [cand], **meta})

        reply = "echo: " + text
        frames = [ev(reply[:6]), ev(reply[6:12]), ev(reply[12:], final=True)]
        if fault == "mute":
            if self.mute(h, text):
                super()._generate(h, rec, model, stream, sse)
        elif fault in ("watch", "quiet"):
            self.watched_stream(
                h, text, [frames[0], *([ev(".")] * 200), frames[-1]], QUIET * (fault == "quiet")
            )
        elif fault == "midreset" and not stream:
            answer = {"candidates": [{"content": {"role": "model", "parts": [{"text": reply}]}}], **meta}
            self.cut_body(h, json.dumps(answer).encode())
        else:
            self.play(h, _gemini_script(fault, frames))


def _gemini_script(fault: str, frames: list[bytes]) -> Script:
    def status(code: int, google: str) -> Script:
        return Script(
            status=code, json_body={"error": {"code": code, "message": "fake fault", "status": google}}
        )

    return {
        "429": Script(status=429, json_body=rate_limit_body("1.5s")),
        "500": status(500, "INTERNAL"),
        "503": status(503, "UNAVAILABLE"),
        "slow": Script(header_delay=SLOW_HEADERS, json_body={}),
        "reset": Script(drop_before_headers=True),
        "midreset": Script(events=frames, drop_after=1),
        "badjson": Script(raw_body=b'{"candidates": [{"content": {"parts": [{"text": "ech'),
        "truncated": Script(events=frames[:2]),  # no finishReason, clean end of body
        "wrongtype": Script(raw_body=HTML, headers={"content-type": "text/html"}),
    }[fault]  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# What a client got, and whether it is acceptable
# ---------------------------------------------------------------------------------------------------


@dataclass
class Result:
    label: str  # what was asked: "normal", a fault kind, ...
    outcome: str  # "ok" (the exact answer), "error" (a well-formed OpenAI error), "bad" (anything else)
    reason: str = ""
    status: int = 0
    latency: float = 0.0
    backend: str = ""
    stream: bool = False
    error_code: str | None = None
    sample: bytes = b""  # the start of a bad answer, for the report
    headers: dict[str, str] = field(default_factory=dict)  # retry-after, x-should-retry of error answers
    via: str = ""  # the client: "raw", "httpx" or "sdk"


def well_formed_error(obj: Any) -> str | None:
    """None if `obj` is an OpenAI error object ({"error": {"message": str, "type": str, ...}})."""
    if not isinstance(obj, dict) or not isinstance(obj.get("error"), dict):
        return "not an {'error': {...}} object"
    err = obj["error"]
    if not isinstance(err.get("message"), str) or not err["message"]:
        return "error.message missing"
    if not isinstance(err.get("type"), str) or not err["type"]:
        return "error.type missing"
    return None


def sse_data(raw: bytes) -> tuple[list[str], str | None]:
    """The data payloads of an SSE body, and what is wrong with its framing (None if nothing)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return [], "stream is not UTF-8"
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text and not text.endswith("\n\n"):
        return [], "stream does not end with a complete event"
    out = []
    for block in text.split("\n\n"):
        data = []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, sep, value = line.partition(":")
            if not sep or name not in ("data", "event", "id", "retry"):
                return [], f"not an SSE line: {line[:80]!r}"
            if name == "data":
                data.append(value[1:] if value.startswith(" ") else value)
        if data:
            out.append("\n".join(data))
    return out, None


def judge_stream(status: int, ctype: str, raw: bytes, expected: str) -> tuple[str, str, str | None]:
    """(outcome, reason, error code) of a streamed answer."""
    if status != 200:
        return judge_error_body(status, ctype, raw)
    if not ctype.startswith("text/event-stream"):
        return "bad", f"200 stream with content-type {ctype!r}", None
    data, problem = sse_data(raw)
    if problem:
        return "bad", problem, None
    if not data:
        return "bad", "stream has no data events", None
    chunks = []
    for i, d in enumerate(data):
        if d == "[DONE]":
            if i != len(data) - 1:
                return "bad", "data after [DONE]", None
            continue
        try:
            obj = json.loads(d)
        except ValueError:
            return "bad", f"data event is not JSON: {d[:80]!r}", None
        if isinstance(obj, dict) and "error" in obj:
            if i != len(data) - 1:
                return "bad", "stream went on after an error event", None
            why = well_formed_error(obj)
            if why:
                return "bad", f"malformed error event: {why}", None
            return "error", obj["error"]["message"][:120], obj["error"].get("code")
        chunks.append(obj)
    if data[-1] != "[DONE]":
        return "bad", "stream ended without [DONE] or an error event (truncated)", None
    text, finish = "", None
    for c in chunks:
        for ch in c.get("choices") or []:
            text += (ch.get("delta") or {}).get("content") or ""
            finish = ch.get("finish_reason") or finish
    if text != expected:
        return "bad", f"wrong text: {text[:60]!r}… expected {expected[:60]!r}…", None
    if finish != "stop":
        return "bad", f"finish_reason {finish!r}", None
    return "ok", "", None


def judge_plain(status: int, ctype: str, raw: bytes, expected: str) -> tuple[str, str, str | None]:
    if status != 200:
        return judge_error_body(status, ctype, raw)
    try:
        obj = json.loads(raw)
        msg = obj["choices"][0]["message"]
        text, finish = msg["content"], obj["choices"][0]["finish_reason"]
    except (ValueError, KeyError, IndexError, TypeError):
        return "bad", "200 answer is not a chat completion", None
    if text != expected:
        return "bad", f"wrong text: {str(text)[:60]!r}… expected {expected[:60]!r}…", None
    if finish != "stop":
        return "bad", f"finish_reason {finish!r}", None
    return "ok", "", None


def judge_error_body(status: int, ctype: str, raw: bytes) -> tuple[str, str, str | None]:
    if status < 400:
        return "bad", f"status {status}", None
    if not ctype.startswith("application/json"):
        return "bad", f"{status} error with content-type {ctype!r}", None
    try:
        obj = json.loads(raw)
    except ValueError:
        return "bad", f"{status} error body is not JSON", None
    why = well_formed_error(obj)
    if why:
        return "bad", f"{status} error: {why}", None
    return "error", f"{status}: {obj['error']['message'][:120]}", obj["error"].get("code")


class Campaign:
    """Collects results and leak hits; every response body any client received is scanned for keys."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = secrets
        self.results: list[Result] = []
        self.leaks: list[str] = []
        self.scanned = 0

    def scan(self, raw: bytes) -> None:
        self.scanned += 1
        if found := leaks(raw, self.secrets):
            self.leaks.extend(found)

    def add(self, r: Result) -> None:
        self.results.append(r)

    def of(self, label: str) -> list[Result]:
        return [r for r in self.results if r.label == label]


class RawConn:
    """A minimal HTTP/1.1 keep-alive client on one connection: a load generator far lighter than httpx
    (which would spend more CPU than the proxy it measures). One request at a time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(
        self, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        if self._reader is None or self._writer is None or self._reader.at_eof():
            self.close()
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head = (
            f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{self.port}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n{extra}\r\n"
        )
        self._writer.write(head.encode("latin-1") + body)
        await self._writer.drain()
        status, got, data = await read_response(self._reader)
        if "close" in got.get("connection", "").lower():
            self.close()
        return status, got, data

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response off a raw connection (content-length or chunked body)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if h)}
    if "chunked" not in headers.get("transfer-encoding", "").lower():
        return status, headers, await reader.readexactly(int(headers.get("content-length") or 0))
    body = bytearray()
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0].strip() or b"0", 16):
        body += (await reader.readexactly(size + 2))[:-2]
    await reader.readuntil(b"\r\n")  # end of the (empty) trailer
    return status, headers, bytes(body)


async def chat(
    client: httpx.AsyncClient | RawConn,
    camp: Campaign,
    label: str,
    prompt: str,
    *,
    stream: bool,
    backend: str = "openrouter",
    model: str | None = None,
    timeout: float,
    headers: dict[str, str] | None = None,
) -> Result:
    """One chat request, checked: the exact echo of `prompt`, or a well-formed error, within `timeout`."""
    if model is None:
        model = OR_MODEL if backend == "openrouter" else f"gemini:{GEMINI_MODEL}"
    body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": prompt}]}
    expected = "echo: " + prompt
    t0 = time.monotonic()
    via = "raw" if isinstance(client, RawConn) else "httpx"
    result = Result(label, "bad", backend=backend, stream=stream, via=via)
    raw = b""
    try:
        async with asyncio.timeout(timeout):
            if isinstance(client, RawConn):
                status, got, raw = await client.post(
                    "/v1/chat/completions", json.dumps(body).encode(), headers or {}
                )
            else:
                async with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as r:
                    raw = await r.aread()
                status, got = r.status_code, {k.lower(): v for k, v in r.headers.items()}
        judge = judge_stream if stream else judge_plain
        result.outcome, result.reason, result.error_code = judge(
            status, got.get("content-type", ""), raw, expected
        )
        result.status = status
        result.headers = {k: got[k] for k in ("retry-after", "x-should-retry") if k in got}
    except TimeoutError:
        result.reason = f"no complete answer within {timeout:g} s (hang)"
    except (
        httpx.HTTPError,
        OSError,
        asyncio.IncompleteReadError,
        asyncio.LimitOverrunError,
        ValueError,
    ) as e:
        result.reason = f"transport error: {type(e).__name__}: {e!s:.120}"
    if result.outcome == "bad" and isinstance(client, RawConn):
        client.close()  # in an unknown state: the next request starts on a fresh connection
    result.latency = time.monotonic() - t0
    if result.outcome == "bad":
        result.sample = raw[-300:]
    camp.scan(raw)
    camp.add(result)
    return result


async def sdk_chat(
    client: openai.AsyncOpenAI, camp: Campaign, label: str, prompt: str, *, backend: str, timeout: float
) -> Result:
    """One streamed request through the official openai SDK, checked like `chat`."""
    model = OR_MODEL if backend == "openrouter" else f"gemini:{GEMINI_MODEL}"
    expected = "echo: " + prompt
    result = Result(label, "bad", backend=backend, stream=True, via="sdk")
    text, finish = "", None
    t0 = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            stream = await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": prompt}], stream=True
            )
            async for c in stream:
                for ch in c.choices:
                    text += ch.delta.content or ""
                    finish = ch.finish_reason or finish
        result.status = 200
        if text != expected:
            result.reason = f"wrong text: {text[:60]!r}… expected {expected[:60]!r}…"
        elif finish != "stop":
            result.reason = f"finish_reason {finish!r}"
        else:
            result.outcome = "ok"
    except TimeoutError:
        result.reason = f"no complete answer within {timeout:g} s (hang)"
    except openai.APIError as e:
        result.reason = f"openai SDK: {type(e).__name__}: {e!s:.160}"
    result.latency = time.monotonic() - t0
    camp.scan(text.encode())
    camp.add(result)
    return result


def async_client(base: str, connections: int, timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base,
        trust_env=False,
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


# ---------------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class RssSampler:
    """Samples a process's RSS every `interval` s in the background (bounded: at most `limit` samples)."""

    def __init__(self, pid: int, interval: float = 0.5, limit: int = 2000) -> None:
        self.pid, self.interval, self.limit = pid, interval, limit
        self.samples: list[tuple[float, float]] = []
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while not self._stop.is_set() and len(self.samples) < self.limit:
            self.samples.append((time.monotonic(), rss_mb(self.pid)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)

    def stop(self) -> None:
        self._stop.set()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[min(98, max(0, round(q * 100) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


@dataclass
class Report:
    """Lines for the terminal summary (tests/load/conftest.py prints them) and the report file."""

    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines.append(line)


REPORT = Report()


def summarise(results: list[Result]) -> dict[str, Any]:
    by: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        by[r.label][r.outcome] += 1
    return {k: dict(v) for k, v in sorted(by.items())}


def bad_lines(results: list[Result], limit: int = 12) -> str:
    bad = [r for r in results if r.outcome == "bad"]
    lines = [
        f"  {r.label} {r.backend} stream={r.stream} status={r.status}: {r.reason} | tail={r.sample[-160:]!r}"
        for r in bad[:limit]
    ]
    more = f"\n  … and {len(bad) - limit} more" if len(bad) > limit else ""
    return "\n".join(lines) + more


async def run_clients(
    client: httpx.AsyncClient | int,
    camp: Campaign,
    label: str,
    clients: int,
    duration: float,
    *,
    timeout: float,
    max_requests: int = 100_000,
    gemini_every: int = 5,
    plain_every: int = 0,
    stop: asyncio.Event | None = None,
    sdk: openai.AsyncOpenAI | None = None,
    sdk_every: int = 0,
) -> list[Result]:
    """`clients` concurrent clients, each asking one question after another until `duration` s have
    passed, `max_requests` (per client) were made, or `stop` is set. Every `gemini_every`-th client talks
    to Gemini; with `plain_every`, every n-th request of a client is not streamed. `client` is an httpx
    client shared by all, or a port: then each client has a RawConn of its own; with `sdk`, every
    `sdk_every`-th client streams through the openai SDK instead. Returns the results."""
    deadline = time.monotonic() + duration
    out: list[Result] = []

    async def one(i: int) -> None:
        backend = "gemini" if gemini_every and i % gemini_every == 0 else "openrouter"
        conn = RawConn(client) if isinstance(client, int) else client
        try:
            await ask(i, backend, conn)
        finally:
            if isinstance(conn, RawConn):
                conn.close()

    async def ask(i: int, backend: str, conn: httpx.AsyncClient | RawConn) -> None:
        for n in range(max_requests):
            if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                return
            stream = not (plain_every and n % plain_every == plain_every - 1)
            prompt = f"{label} c{i} n{n} {os.urandom(6).hex()} żółw ✓"
            if sdk is not None and sdk_every and i % sdk_every == 1:
                out.append(await sdk_chat(sdk, camp, label, prompt, backend=backend, timeout=timeout))
                continue
            out.append(await chat(conn, camp, label, prompt, stream=stream, backend=backend, timeout=timeout))

    await asyncio.gather(*(one(i) for i in range(clients)))
    return out

"""Fakes for the key-rotation tests (tests/unit/pipeline/test_failover_paths.py in-process,
tests/e2e/test_failover.py end to end): four keys per backend, scripts reserved for one key, and every
attempt read back as a `Hit` (when, backend, model, key name, prompt). Key *values* appear only inside
comparisons with those records; everything the tests show or compare otherwise is a key name."""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

import openai

from tests.fakes.fake_gemini import DEFAULT_MODELS as GEMINI_DEFAULT_MODELS
from tests.fakes.fake_gemini import GENERATE, FakeGemini, Reply
from tests.fakes.fake_gemini import last_user_text as gemini_prompt
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.fakes.fake_openrouter import last_user_text as openrouter_prompt
from tests.fakes.server import Recorded, Script

OR_KEYS = (
    "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",
    "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",
    "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",
    "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",
)
GM_KEYS = (
    "AIzaSyleFyBs-K0P5_NhM_CqBQoeEDl_8bh8W73",
    "AIzaSyqt-RllByKEr3VH8ZaeDlpPeX344LjeDyJ",
    "AIzaSyHw4kMI71yBBfzaegGFGVz3b-WWMMBmtn7",
    "AIzaSyN3v8Qe_tR5kJm2Zw9XcB7-pLd4HfG6sYq",
)
OR_NAMES = {v: f"OPENROUTER_API_KEY_{i}" for i, v in enumerate(OR_KEYS, 1)}
GM_NAMES = {v: f"GEMINI_API_KEY_{i}" for i, v in enumerate(GM_KEYS, 1)}
RING = {"openrouter": list(OR_NAMES.values()), "gemini": list(GM_NAMES.values())}
ALL_KEYS = OR_KEYS + GM_KEYS

# Models for tests that cool keys down: each test takes its own (`fresh`).
FRESH_GEMINI = [f"gemini-fo-{n:02d}" for n in range(1, 81)]
GEMINI_MODELS = (*GEMINI_DEFAULT_MODELS, *((m, GENERATE) for m in FRESH_GEMINI))

_fresh_numbers = itertools.count()


def fresh(backend: str) -> str:
    """A model no other test uses, so cooldowns on it cannot leak between tests."""
    n = next(_fresh_numbers)
    return FRESH_GEMINI[n] if backend == "gemini" else f"fo/model-{n:02d}"


# -- fakes ------------------------------------------------------------------------------------------


class KeyedOpenRouter(FakeOpenRouter):
    """FakeOpenRouter whose scripts can be reserved for one key (the stock fake plays them in order)."""

    def __init__(self, keys: tuple[str, ...], models: tuple[str, ...]) -> None:
        super().__init__(keys, models)
        self._keyed: dict[str, deque[Script]] = {}
        self._keyed_lock = threading.Lock()
        self.served: list[tuple[float, str, int]] = []  # keyed scripts played: (time, key name, status)

    def enqueue_for(self, key: str, *scripts: Script) -> None:
        with self._keyed_lock:
            self._keyed.setdefault(key, deque()).extend(scripts)

    def reset(self) -> None:
        super().reset()
        with self._keyed_lock:
            self._keyed.clear()
        self.served = []

    def handle(self, h: BaseHTTPRequestHandler, rec: Recorded) -> None:
        if rec.method == "POST" and rec.path.endswith("/chat/completions") and self._authorised(rec):
            key = rec.headers["authorization"][7:]
            with self._keyed_lock:
                queue = self._keyed.get(key)
                script = queue.popleft() if queue else None
            if script is not None:
                self.served.append((time.monotonic(), OR_NAMES.get(key, "?"), script.status))
                self.play(h, script)
                return
        super().handle(h, rec)


class TracedGemini(FakeGemini):
    """FakeGemini that notes when each scripted answer is handed out, and for which key."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.served: list[tuple[float, str, int]] = []  # (time, key name, status)

    def reset(self) -> None:
        super().reset()
        self.served = []

    def _take(self, model: str, key: str | None) -> Reply | Script | None:
        script = super()._take(model, key)
        if script is not None:
            status = script.status if isinstance(script, Script) else 200
            self.served.append((time.monotonic(), GM_NAMES.get(key or "", "?"), status))
        return script


@dataclass(frozen=True)
class Hit:
    """One request a fake received: when, for which backend/model, with which key (by name), asking what."""

    at: float
    backend: str
    model: str
    key: str
    prompt: str

    @property
    def where(self) -> tuple[str, str, str]:
        return (self.backend, self.model, self.key)


def or_hits(fake: FakeOpenRouter) -> list[Hit]:
    with fake._lock:
        recs = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/chat/completions")]
    out = []
    for r in recs:
        body = r.json()
        key = OR_NAMES.get(r.headers["authorization"][7:], "?")
        out.append(Hit(r.at, "openrouter", body["model"], key, openrouter_prompt(body)))
    return out


def gm_hits(fake: FakeGemini) -> list[Hit]:
    out = []
    for r in fake.generate_requests():
        model = unquote(urlsplit(r.path).path).removeprefix("/v1beta/models/").rpartition(":")[0]
        key = GM_NAMES.get(fake.key_of(r) or "", "?")
        out.append(Hit(r.at, "gemini", model, key, gemini_prompt(r.json())))
    return out


def hits(or_fake: FakeOpenRouter, gm_fake: FakeGemini, model: str | None = None) -> list[Hit]:
    """Every chat attempt on both fakes, in the order they arrived."""
    all_hits = sorted(or_hits(or_fake) + gm_hits(gm_fake), key=lambda h: h.at)
    return [h for h in all_hits if model is None or h.model == model]


def rotation(backend: str, start: str) -> list[str]:
    names = RING[backend]
    i = names.index(start)
    return names[i:] + names[:i]


def after(backend: str, key: str, n: int = 1) -> str:
    return rotation(backend, key)[n % 4]


# -- what a client sees ------------------------------------------------------------------------------


def answer(c: openai.OpenAI, model: str, text: str, stream: bool) -> str:
    """The answer's text, through the official SDK, streamed or not."""
    messages: Any = [{"role": "user", "content": text}]
    if not stream:
        r = c.chat.completions.create(model=model, messages=messages)
        assert r.choices[0].finish_reason == "stop"
        return r.choices[0].message.content or ""
    parts, finish = [], None
    for ch in c.chat.completions.create(model=model, messages=messages, stream=True):
        if ch.choices:
            parts.append(ch.choices[0].delta.content or "")
            finish = ch.choices[0].finish_reason or finish
    assert finish == "stop"
    return "".join(parts)


def cooling_lines(status: str, backend: str, model: str) -> dict[str, tuple[int, str]]:
    """`!/status` cooldown lines for (backend, model): key name -> (seconds left, reason)."""
    pattern = re.compile(rf"^\s+{backend}:{re.escape(model)} (\S+): (\d+) s left \((.*)\)$", re.M)
    return {m[1]: (int(m[2]), m[3]) for m in pattern.finditer(status)}

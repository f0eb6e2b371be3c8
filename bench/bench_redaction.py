"""Redaction timings: 40 realistic keys against a 1 MB prompt and a 1 MB chat request.

Run: .venv/bin/python bench/bench_redaction.py  (prints best-of-N milliseconds; not a test).
"""

from __future__ import annotations

import json
import random
import re
import string
import time
from collections.abc import Callable
from typing import Any

from addons.redaction import Redactor

HEX = "0123456789abcdef"
URLSAFE = string.ascii_letters + string.digits + "-_"
SIZE = 1_000_000


def realistic_keys(rng: random.Random) -> list[str]:
    openrouter = ["sk-or-v1-" + "".join(rng.choices(HEX, k=64)) for _ in range(20)]
    gemini = ["AIza" + "".join(rng.choices(URLSAFE, k=35)) for _ in range(20)]
    return openrouter + gemini


def prose(rng: random.Random, size: int) -> str:
    # Mixed prose/code/JSON with near-misses ("sk-", "AIz", "Asia") so the anchors get some false hits.
    vocab = (
        'the model should answer skip sk-ant Asia AIz def return x**2 {"role": "user"} token key sk-or- AIzb'
    )
    words = [*vocab.split(" "), "\n", "—", "naïve"]
    out: list[str] = []
    n = 0
    while n < size:
        w = rng.choice(words)
        out.append(w)
        n += len(w) + 1
    return " ".join(out)[:size]


def with_keys(rng: random.Random, text: str, keys: list[str], count: int) -> str:
    for _ in range(count):
        p = rng.randrange(len(text))
        text = text[:p] + " " + rng.choice(keys) + " " + text[p:]
    return text


def chat_request(rng: random.Random, keys: list[str], size: int, leak: bool) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    n = 0
    while n < size:
        content = prose(rng, rng.randrange(200, 4000))
        if leak and rng.random() < 0.02:
            content = with_keys(rng, content, keys, 1)
        msg: dict[str, Any] = {"role": rng.choice(["user", "assistant"]), "content": content}
        if rng.random() < 0.2:
            msg["content"] = [
                {"type": "text", "text": content},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
            ]
        messages.append(msg)
        n += len(content) + 60
    tools = [
        {
            "type": "function",
            "function": {
                "name": f"tool_{i}",
                "description": "does a thing",
                "parameters": {"type": "object", "properties": {"a": {"type": "string"}}},
            },
        }
        for i in range(50)
    ]
    return {"model": "openrouter:openai/gpt-4o", "messages": messages, "tools": tools, "stream": True}


def best_ms(fn: Callable[[], object], repeat: int = 30) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def main() -> None:
    rng = random.Random(42)
    keys = realistic_keys(rng)
    r = Redactor(keys)
    clean = prose(rng, SIZE)
    dirty = with_keys(rng, clean, keys, 20)
    assert not any(k in r.redact(dirty) for k in keys)
    rows = [
        ("redact, 1 MB, no keys", lambda: r.redact(clean)),
        ("redact, 1 MB, 20 keys inside", lambda: r.redact(dirty)),
        ("contains_secret, 1 MB, no keys", lambda: r.contains_secret(clean)),
    ]
    random_keys = ["".join(rng.choices(URLSAFE, k=40)) for _ in range(40)]
    rr = Redactor(random_keys)
    rows.append(("redact, 1 MB, 40 unrelated random keys (40 anchors)", lambda: rr.redact(clean)))
    dense = Redactor(["aaaaaaaaaa", "aaaaaaaab1"])
    runs = ("a" * 50 + " ") * (SIZE // 51)
    rows.append(("redact, 1 MB of a-runs vs key 'aaaaaaaaaa' (regex fallback)", lambda: dense.redact(runs)))
    body = chat_request(rng, keys, SIZE, leak=False)
    leaky = chat_request(rng, keys, SIZE, leak=True)
    size = len(json.dumps(body))
    rows.append((f"redact_json, {size / 1e6:.2f} MB chat request, no keys", lambda: r.redact_json(body)))
    rows.append(("redact_json, same size, ~2% of messages leak a key", lambda: r.redact_json(leaky)))
    many_small = {
        "items": [{"id": f"item-{i:08d}", "tags": ["alpha-beta", "gamma-delta"]} for i in range(25_000)]
    }
    size = len(json.dumps(many_small))
    rows.append(
        (f"redact_json, {size / 1e6:.2f} MB of 75k short strings, no keys", lambda: r.redact_json(many_small))
    )
    rows.append(("(for scale) json.dumps of that request", lambda: json.dumps(body)))
    # The approach not taken: one alternation of all keys, as re.sub over the whole prompt.
    alternation = re.compile("|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True)))
    rows.append(("(baseline) single re alternation .sub, 1 MB, no keys", lambda: alternation.sub("", clean)))
    for label, fn in rows:
        print(f"{best_ms(fn):8.2f} ms  {label}")


if __name__ == "__main__":
    main()

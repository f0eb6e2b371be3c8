"""Redaction timings: 40 realistic keys against a 1 MB prompt and a 1 MB chat request.

Run: .venv/bin/python -m bench.bench_redaction  (prints best-of-N milliseconds; not a test).
`--json` prints only the cases bench.run puts in its table (TABLE_CASES), as {id: ms}.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from addons.security.redaction import Redactor

HEX = "0123456789abcdef"
URLSAFE = string.ascii_letters + string.digits + "-_"
SIZE = 1_000_000
# 40 keys, 1 MB prompt: the realistic key set with keys inside, and 40 random keys (40 anchors, worst).
TABLE_CASES = ("dirty", "random")


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


@dataclass(frozen=True, slots=True)
class Case:
    id: str  # stable name, for bench.run's table
    label: str
    fn: Callable[[], object]


def prompt_cases(rng: random.Random) -> tuple[list[str], list[Case]]:
    """40 realistic keys (20 OpenRouter, 20 Gemini) and the 1 MB prompt cases; returns (keys, cases)."""
    keys = realistic_keys(rng)
    r = Redactor(keys)
    clean = prose(rng, SIZE)
    dirty = with_keys(rng, clean, keys, 20)
    assert not any(k in r.redact(dirty) for k in keys)
    random_keys = ["".join(rng.choices(URLSAFE, k=40)) for _ in range(40)]
    rr = Redactor(random_keys)
    dense = Redactor(["aaaaaaaaaa", "aaaaaaaab1"])
    runs = ("a" * 50 + " ") * (SIZE // 51)
    # The approach not taken: one alternation of all keys, as re.sub over the whole prompt.
    alternation = re.compile("|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True)))
    return keys, [
        Case("clean", "redact, 1 MB, no keys", lambda: r.redact(clean)),
        Case("dirty", "redact, 1 MB, 20 keys inside", lambda: r.redact(dirty)),
        Case("contains", "contains_secret, 1 MB, no keys", lambda: r.contains_secret(clean)),
        Case("random", "redact, 1 MB, 40 unrelated random keys (40 anchors)", lambda: rr.redact(clean)),
        Case(
            "aruns", "redact, 1 MB of a-runs vs key 'aaaaaaaaaa' (regex fallback)", lambda: dense.redact(runs)
        ),
        Case(
            "alternation",
            "(baseline) single re alternation .sub, 1 MB, no keys",
            lambda: alternation.sub("", clean),
        ),
    ]


def json_cases(rng: random.Random, keys: list[str]) -> list[Case]:
    r = Redactor(keys)
    body = chat_request(rng, keys, SIZE, leak=False)
    leaky = chat_request(rng, keys, SIZE, leak=True)
    size = len(json.dumps(body))
    many_small = {
        "items": [{"id": f"item-{i:08d}", "tags": ["alpha-beta", "gamma-delta"]} for i in range(25_000)]
    }
    small_size = len(json.dumps(many_small))
    return [
        Case("json", f"redact_json, {size / 1e6:.2f} MB chat request, no keys", lambda: r.redact_json(body)),
        Case(
            "json_leaky", "redact_json, same size, ~2% of messages leak a key", lambda: r.redact_json(leaky)
        ),
        Case(
            "json_small",
            f"redact_json, {small_size / 1e6:.2f} MB of 75k short strings, no keys",
            lambda: r.redact_json(many_small),
        ),
        Case("dumps", "(for scale) json.dumps of that request", lambda: json.dumps(body)),
    ]


def table_timings(repeat: int = 30) -> dict[str, float]:
    """Best-of-`repeat` milliseconds of the cases bench.run puts in its table, by id."""
    _, cases = prompt_cases(random.Random(42))
    return {c.id: best_ms(c.fn, repeat) for c in cases if c.id in TABLE_CASES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="bench.run's table cases only, as {id: ms}")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    if args.json:
        print(json.dumps(table_timings(max(1, min(args.repeat, 100)))))
        return
    rng = random.Random(42)
    keys, cases = prompt_cases(rng)
    for case in [*cases, *json_cases(rng, keys)]:
        print(f"{best_ms(case.fn, args.repeat):8.2f} ms  {case.label}")


if __name__ == "__main__":
    main()

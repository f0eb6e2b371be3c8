"""Hostile input against a running proxy (real mitmdump + addon, fake upstreams answering normally).

    .venv/bin/python -m pytest tests/load/test_fuzz.py -q                 # SHORT: a few hundred cases
    LLM_LOAD=full .venv/bin/python -m pytest tests/load/test_fuzz.py -q   # FULL: over 10,000 cases

Hypothesis generates chat bodies with wrong types everywhere, huge strings, deeply nested content parts
and JSON, unicode and control characters, in-chat commands with nested quotes and parentheses; raw byte
bodies; garbage X-Session-ID and other headers; random methods and paths under /v1. For every case:
the proxy process is alive, no "Traceback" in the body, an answer within the timeout, and every
/v1/chat/completions answer is a 200 chat completion (or a well-formed stream) or an OpenAI error JSON
with a 4xx/5xx status; an internal error (500 `proxy_error`) counts as a failure; no configured key in
any body; no traceback in the proxy's log. The number of cases run is in the run's summary. SHORT draws
the same cases every run (derandomized), FULL new ones.

Inputs the fuzzing found to break the proxy are pinned as plain tests below the fuzzers, so they fail
the same test every time: JSON nested thousands of levels deep, lone UTF-16 surrogates, `stream_options`
that is not an object, HEAD on the API paths, configured keys typed into commands, and the history
writer surviving a deeply nested prompt.
"""

from __future__ import annotations

import contextlib
import json
import socket
import string
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from addons.pipeline.dispatch import route
from tests.fakes.fake_openrouter import FakeOpenRouter
from tests.harness import ProxyProcess, leaks
from tests.load.support import (
    FULL,
    GEMINI_KEYS,
    OPENROUTER_KEYS,
    REPORT,
    LoadGemini,
    LoadOpenRouter,
    env_for,
    sse_data,
    well_formed_error,
)

CASES = {"bodies": 7000, "raw": 1500, "paths": 1600} if FULL else {"bodies": 200, "raw": 60, "paths": 100}
MAX_BYTES = 256 * 1024
LONG = pytest.mark.timeout(1800 if FULL else 120)
TIMEOUT = 15.0
RUN: Counter[str] = Counter()  # cases run, by test
STATUS: Counter[str] = Counter()  # what the chat answers were


@pytest.fixture(scope="module")
def fuzz_proxy(fakes: tuple[LoadOpenRouter, LoadGemini]) -> Iterator[ProxyProcess]:
    with FakeOpenRouter(()) as passthrough:
        env = env_for(*fakes, PROXY_TIMEOUT="5", LLM_MAX_REQUEST_BYTES=str(MAX_BYTES))
        with ProxyProcess(env=env, reverse_target=f"http://127.0.0.1:{passthrough.port}") as p:
            yield p
    REPORT.add(
        f"fuzz: {sum(RUN.values())} cases ({', '.join(f'{k} {v}' for k, v in RUN.items())}); "
        f"chat answers by status: {dict(sorted(STATUS.items()))}"
    )


@pytest.fixture(scope="module")
def http(fuzz_proxy: ProxyProcess) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"http://127.0.0.1:{fuzz_proxy.reverse_port}", trust_env=False, timeout=TIMEOUT
    ) as c:
        yield c


def fuzz(examples: int) -> settings:
    # SHORT runs the same cases every time (it runs in CI: a failure must be a finding, not a dice roll);
    # FULL draws new ones.
    return settings(
        max_examples=examples,
        derandomize=not FULL,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


# -- strategies -------------------------------------------------------------------------------------

ADVERSARIAL = [
    "",
    " ",
    "\x00",
    "\x00\x01\x02\x1b[31m\x7f",
    "\r\n\r\ndata: [DONE]\n\n",
    'data: {"error": 1}\n\n',
    "\u202eevil\u202c \u200b\u200d\ufeff",
    "😀" * 50,
    "Ω≈ç√∫˜µ≤≥÷ 田中さん ﷽ 𒐫",
    "!/help",
    "!/status",
    "!/hello",
    '!/set(project="a, b (c)")',
    "!/set(project='it\\'s \"(nested)\"')",
    '!/set(project="unclosed',
    "!/set(project=((((((",
    "!/set(model=gemini:gemini-2.5-flash) hi",
    "!/set(model=nope:nothing)",
    "!/set(interactive=on) !/set(interactive=maybe)",
    "!/unset(model, backend, project)",
    "!/create-failover-route(name=fz, policy=km) !/route-append(name=fz, gemini:gemini-2.5-flash)",
    '!/route-append(name="fz", "openrouter:openai/gpt-4o-mini", \'gemini:gemini-2.5-pro\')',
    "!/delete-failover-route(name=fz)",
    '!/set(project="ü\\\\\\"(\\")")',
    "!/ünïcode(x=1) !/x(\u0000) !/set(project=\U0001f600)",
    # a configured key: must be redacted, never echoed
    "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",
]
COMMANDS = [
    "set", "unset", "help", "hello", "status", "create-failover-route", "route-append", "route-prepend",
    "route-clear", "delete-failover-route", "list-failover-routes", "route-list", "nope", "SET", "sét",
]  # fmt: skip
command_args = st.lists(
    st.sampled_from([*"abz=,()'\"\\ \t\nü😀:/-_.", "model", "project", "gemini:"]), max_size=30
).map("".join)
command = st.builds(
    lambda name, args, close: f"!/{name}({args}{close}",
    st.sampled_from(COMMANDS),
    command_args.map(lambda t: t[:60]),
    st.sampled_from([")", "", "))", ")("]),
)
short_text = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8"), max_size=40),
    st.text(st.characters(min_codepoint=0, max_codepoint=0x1F), max_size=10),
    st.sampled_from(ADVERSARIAL),
    command,
    st.lists(
        st.one_of(st.sampled_from(ADVERSARIAL), command, st.text(max_size=10)), min_size=2, max_size=4
    ).map(" ".join),
)
# Long ones are built, not listed (a strategy's repr must stay small), and rare.
long_text = st.one_of(
    st.builds(lambda n, c: c * n, st.sampled_from([500, 70_000, MAX_BYTES + 10]), st.sampled_from("xé(")),
    st.builds(lambda n: "!/set(" + "a=b," * n + ")", st.sampled_from([300, 5000])),
)
text = st.sampled_from([True] * 15 + [False]).flatmap(lambda short: short_text if short else long_text)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def deep(depth: int, kind: str) -> Any:
    """A placeholder that `dump` expands into `depth` levels of nesting (too deep to build as objects)."""
    return {"__deep__": (depth, kind)}


def dump(obj: Any) -> bytes:
    """json.dumps (NaN and Infinity included), with the `deep` placeholders expanded."""
    raw = json.dumps(obj, allow_nan=True)
    while '{"__deep__": [' in raw:
        start = raw.index('{"__deep__": [')
        end = raw.index("]}", start) + 2
        depth, kind = json.loads(raw[start:end])["__deep__"]
        if kind == "list":
            nested = "[" * depth + '"x"' + "]" * depth
        elif kind == "parts":
            nested = '[{"type": "text", "text": ' * depth + '"x"' + "}]" * depth
        else:
            nested = '{"a": ' * depth + "1" + "}" * depth
        raw = raw[:start] + nested + raw[end:]
    return raw.encode("utf-8", errors="surrogatepass")


# Nesting a little deeper than anything real; far deeper is test_deep_nesting's job (one case each).
deep_values = st.builds(deep, st.sampled_from([30, 120]), st.sampled_from(["list", "parts", "dict"]))
weird = st.one_of(json_values, deep_values)


def mostly(valid: st.SearchStrategy[Any], weight: int = 3) -> st.SearchStrategy[Any]:
    """`valid` most of the time, else a value of any type: requests that get deep before going wrong."""
    return st.sampled_from([True] * weight + [False]).flatmap(lambda ok: valid if ok else weird)


URLS = [
    "data:image/png;base64,iVBORw0KGgo=",
    "data:,",
    "data:image/png;base64,@@@",
    "data:;base64,",
    "data:application/pdf;base64,JVBERi0=",
    "https://example.invalid/x.png",
    "file:///etc/passwd",
]
part = st.one_of(
    st.fixed_dictionaries({"type": mostly(st.just("text"), weight=8), "text": mostly(text, weight=8)}),
    st.fixed_dictionaries({"type": st.just("text"), "text": text}),
    st.fixed_dictionaries(
        {
            "type": st.just("image_url"),
            "image_url": mostly(st.fixed_dictionaries({"url": mostly(st.sampled_from(URLS))})),
        }
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["input_audio", "file", "x", "refusal"])},
        optional={k: weird for k in ("text", "image_url", "file", "input_audio", "refusal")},
    ),
)
part = mostly(part, weight=10)
schema = st.recursive(
    st.fixed_dictionaries(
        {
            "type": mostly(
                st.sampled_from(["string", "number", "integer", "boolean", "null", "object", "array"])
            )
        },
        optional={
            "description": text,
            "enum": weird,
            "format": text,
            "$ref": st.sampled_from(["#/$defs/a", "#", "x"]),
        },
    ),
    lambda inner: st.fixed_dictionaries(
        {"type": st.sampled_from(["object", "array", ["string", "null"]])},
        optional={
            "properties": st.dictionaries(st.text(max_size=6), inner, max_size=3),
            "items": inner,
            "anyOf": st.lists(inner, max_size=3),
            "required": mostly(st.lists(st.text(max_size=6), max_size=3)),
            "$defs": st.dictionaries(st.just("a"), inner, max_size=1),
            "additionalProperties": mostly(st.booleans()),
        },
    ),
    max_leaves=8,
)
tool_call = st.fixed_dictionaries(
    {
        "id": mostly(st.text(max_size=12)),
        "type": mostly(st.just("function")),
        "function": mostly(st.fixed_dictionaries({"name": mostly(text), "arguments": mostly(text)})),
    }
)
ROLES = ["user", "user", "user", "system", "developer", "assistant", "tool", "function"]
message = st.fixed_dictionaries(
    {
        "role": mostly(st.sampled_from(ROLES), weight=12),
        "content": mostly(st.one_of(text, st.none(), st.lists(part, max_size=4)), weight=8),
    },
    optional={
        "name": mostly(text, weight=1),
        "tool_calls": mostly(st.lists(tool_call, max_size=3), weight=2),
        "tool_call_id": mostly(st.text(max_size=12), weight=2),
    },
)
MODELS = [
    "openai/gpt-4o-mini",
    "anthropic/claude-3.5-sonnet",
    "gemini:gemini-2.5-flash",
    "gemini:gemini-3-pro-preview",
    "gemini:gemini-2.5-pro",
    "gemini:",
    "gemini:nope",
    "openrouter:",
    ":",
    "fz",
]
model = mostly(st.one_of(st.sampled_from(MODELS), text), weight=6)
tools = mostly(
    st.lists(
        st.fixed_dictionaries(
            {
                "type": mostly(st.just("function")),
                "function": mostly(
                    st.fixed_dictionaries({"name": mostly(text)}, optional={"parameters": schema})
                ),
            }
        ),
        max_size=3,
    )
)
OPTIONAL_FIELDS = [
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "stop",
    "tool_choice",
    "response_format",
    "reasoning_effort",
    "project",
    "seed",
    "top_p",
    "logprobs",
    "user",
    "metadata",
]
chat_body = st.builds(
    lambda known, unknown: {**unknown, **known},
    st.fixed_dictionaries(
        {
            "model": model,
            "stream": mostly(st.sampled_from([True, False]), weight=8),
            "messages": mostly(st.lists(mostly(message, weight=12), min_size=1, max_size=4), weight=8),
        },
        optional={
            "stream_options": mostly(st.fixed_dictionaries({"include_usage": mostly(st.booleans())})),
            "tools": tools,
            **{k: weird for k in OPTIONAL_FIELDS},
        },
    ),
    st.dictionaries(st.text(max_size=12), json_values, max_size=3),  # fields nobody knows
)
body = mostly(chat_body, weight=8)

# Anything HTTP allows in a header value (h11 refuses the rest before it is sent).
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=200
).map(str.strip)
session_id = st.one_of(
    st.none(), header_text, st.sampled_from(["", " ", "default", "x" * 128, "x" * 129, "é"])
)
extra_headers = st.dictionaries(
    st.sampled_from(
        [
            "content-type",
            "content-encoding",
            "authorization",
            "x-api-key",
            "accept",
            "accept-encoding",
            "x-stainless-lang",
            "expect",
            "x-forwarded-for",
            "openai-organization",
        ]
    ),
    st.one_of(
        header_text,
        st.sampled_from(["application/json", "text/plain", "gzip", "br", "identity", "100-continue"]),
    ),
    max_size=3,
)

CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")


# -- checks -----------------------------------------------------------------------------------------


def check_chat(r: httpx.Response, stream_asked: bool) -> None:
    """A chat answer: 200 completion / stream, or an OpenAI error with a 4xx/5xx status."""
    ctype = r.headers.get("content-type", "")
    STATUS[str(r.status_code)] += 1
    if r.status_code == 200 and stream_asked:
        assert ctype.startswith("text/event-stream"), f"stream asked, got {ctype!r}: {r.text[:300]}"
        data, problem = sse_data(r.content)
        assert problem is None, problem
        assert data, "empty stream"
        for i, d in enumerate(data):
            if d == "[DONE]":
                assert i == len(data) - 1, "data after [DONE]"
                continue
            obj = json.loads(d)
            if "error" in obj:
                assert i == len(data) - 1 and well_formed_error(obj) is None, d
            else:
                assert isinstance(obj.get("choices"), list), d
        assert data[-1] == "[DONE]" or "error" in json.loads(data[-1]), "stream ended without [DONE]"
        return
    if r.status_code == 200:
        assert ctype.startswith("application/json"), f"got {ctype!r}: {r.text[:300]}"
        obj = r.json()
        assert obj.get("object") == "chat.completion", r.text[:300]
        assert isinstance(obj["choices"][0]["message"], dict), r.text[:300]
        return
    check_error(r)


def check_error(r: httpx.Response) -> None:
    ctype = r.headers.get("content-type", "")
    assert 400 <= r.status_code < 600, f"status {r.status_code}: {r.text[:300]}"
    assert ctype.startswith("application/json"), (
        f"{r.status_code} with content-type {ctype!r}: {r.text[:200]}"
    )
    obj = r.json()
    why = well_formed_error(obj)
    assert why is None, f"{r.status_code}: {why}: {r.text[:300]}"
    assert obj["error"].get("code") != "proxy_error", f"internal proxy error on this input: {r.text[:300]}"


def common(proxy: ProxyProcess, r: httpx.Response) -> None:
    assert b"Traceback" not in r.content, r.text[:2000]
    assert not leaks(r.content, proxy.secrets()), "a configured key in the answer"
    assert proxy.proc is not None and proxy.proc.poll() is None, "the proxy died"


def send(
    http: httpx.Client, method: str, path: str, content: bytes, headers: dict[str, str]
) -> httpx.Response:
    try:
        return http.request(
            method, path, content=content, headers={k: v.encode("latin-1") for k, v in headers.items()}
        )
    except httpx.LocalProtocolError:
        reject()  # not expressible in HTTP/1.1 at all: nothing for the proxy to handle
    except httpx.TimeoutException:
        pytest.fail(f"no answer within {TIMEOUT:g} s to {method} {path} ({len(content)} bytes): a hang")


# -- tests ------------------------------------------------------------------------------------------


@LONG
@fuzz(CASES["bodies"])
@given(body=body, session=session_id, headers=extra_headers, path=st.sampled_from(CHAT_PATHS))
def test_fuzz_chat_bodies(
    fuzz_proxy: ProxyProcess,
    http: httpx.Client,
    body: Any,
    session: str | None,
    headers: dict[str, str],
    path: str,
) -> None:
    RUN["bodies"] += 1
    hdrs = {"content-type": "application/json", **headers}
    if session is not None:
        hdrs["x-session-id"] = session
    r = send(http, "POST", path, dump(body), hdrs)
    common(fuzz_proxy, r)
    check_chat(r, isinstance(body, dict) and body.get("stream") is True)


@LONG
@fuzz(CASES["raw"])
@given(
    raw=st.one_of(
        st.binary(max_size=300),
        st.sampled_from(
            [
                b"",
                b"\xef\xbb\xbf{}",
                b'{"model": "x", "messages": [',
                b'{"model": "x", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
                b'{"model": "x", "messages": [{"role": "user", "content": "a"}]}' * 2,
                b'{"model": NaN, "messages": Infinity}',
                b'{"messages": [{"role": "user", "content": "hi"}], "model": "x", "model": 1}',
                b"null",
                b"1e999999",
                b'"' + b"\\u0000" * 1000 + b'"',
            ]
        ),
    ),
    ctype=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]),
)
def test_fuzz_raw_bodies(fuzz_proxy: ProxyProcess, http: httpx.Client, raw: bytes, ctype: str) -> None:
    RUN["raw"] += 1
    r = send(http, "POST", "/v1/chat/completions", raw, {"content-type": ctype} if ctype else {})
    common(fuzz_proxy, r)
    check_chat(r, False)


SEGMENTS = [
    "chat", "completions", "models", "sessions", "history", "gemini:gemini-2.5-flash", "openai%2Fgpt-4o-mini",
    "..", ".", "%00", "%2e%2e", "%ff", "x" * 300, "default", "", "embeddings", "responses",
]  # fmt: skip
QUERIES = [
    "?limit=0", "?limit=-1", "?limit=99999999999999999999", "?limit=2&format=jsonl", "?format=",
    "?%ff=%00", "?limit=1&limit=x", "?" + "a=b&" * 200,
]  # fmt: skip
path_strategy = st.one_of(
    st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=5).map(lambda s: "/v1/" + "/".join(s)),
    st.sampled_from(
        [
            "/v1/chat/completions",
            "/v1/chat/completions/",
            "/v1/models",
            "/v1/models/",
            "/v1/models/gemini:gemini-2.5-flash",
            "/v1/models/nope",
            "/v1/sessions/default/history",
            "/v1/sessions//history",
            "/v1/sessions/%00/history",
            "/v1/sessions/" + "s" * 500 + "/history",
        ]
    ),
    st.text(string.printable, max_size=30).map(lambda t: "/v1/" + quote(t, safe="/:")),
).flatmap(
    lambda p: st.one_of(
        st.just(p),
        st.sampled_from(QUERIES).map(lambda q: p + q),
    )
)  # fmt: skip
method = st.one_of(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "PROPFIND"]),
    st.text(string.ascii_uppercase, min_size=1, max_size=12),
)


@LONG
@fuzz(CASES["paths"])
@given(
    method=method,
    path=path_strategy,
    session=session_id,
    body=st.one_of(st.just(b""), chat_body.map(dump), st.binary(max_size=100)),
)
def test_fuzz_methods_and_paths(
    fuzz_proxy: ProxyProcess, http: httpx.Client, method: str, path: str, session: str | None, body: bytes
) -> None:
    RUN["paths"] += 1
    if method == "CONNECT":
        return
    headers = {"content-type": "application/json"}
    if session is not None:
        headers["x-session-id"] = session
    if method == "HEAD":
        # On a connection of its own: whether a HEAD answer carries a body is test_head_answer_has_no_body's
        # question; here, only whether the proxy survives and answers.
        with httpx.Client(base_url=http.base_url, trust_env=False, timeout=TIMEOUT) as one:
            common(fuzz_proxy, send(one, method, path, b"", headers))
        return
    r = send(http, method, path, body, headers)
    common(fuzz_proxy, r)
    sent = r.request.url.raw_path.decode("ascii")
    kind = route(method, sent)
    if kind is None:
        return  # passed through to the reverse target
    if kind == "chat":
        check_chat(r, False)
    elif kind == "method":
        assert r.status_code in (405, 413), (r.status_code, r.text[:300])  # 413: size is checked first
        check_error(r)
    elif r.status_code != 200:
        check_error(r)
    else:
        assert r.headers.get("content-type", "").startswith(("application/json", "application/x-ndjson"))


def head_then_get(proxy: ProxyProcess, path: str, headers: dict[str, str]) -> None:
    """An answer to HEAD must end with its head: body bytes after it would be read as the start of the
    next answer on that connection (HTTP clients then fail, or worse, misread). Raw socket: HEAD, read
    the head, then nothing more may arrive; then a GET on the same connection must be answered."""
    port = proxy.reverse_port
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(f"HEAD {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n{extra}\r\n".encode("latin-1"))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"HEAD {path}: connection closed before the answer's head"
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        sock.settimeout(0.2)
        with contextlib.suppress(TimeoutError):
            rest += sock.recv(65536)
        assert not rest, f"HEAD {path} answered with a body: {head[:60]!r} + {rest[:120]!r}"
        sock.settimeout(TIMEOUT)
        sock.sendall(f"GET /v1/models HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n".encode())
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 "), f"after HEAD {path}: {answer[:120]!r}"
    assert proxy.proc is not None and proxy.proc.poll() is None, "the proxy died"


@pytest.mark.parametrize(
    "path", ["/v1/chat/completions", "/v1/models", "/v1/models/nope", "/v1/sessions/x/history"]
)
def test_head_answer_has_no_body(fuzz_proxy: ProxyProcess, path: str) -> None:
    head_then_get(fuzz_proxy, path, {})


DEEP = {
    "body": lambda n: "[" * n + "1" + "]" * n,
    "content": lambda n: (
        '{"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": '
        + '[{"type": "text", "text": "x", "more": ' * n
        + "1"
        + "}]" * n
        + "}]}"
    ),
    "extra-field": lambda n: (
        '{"model": "gemini:gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}],'
        ' "metadata": ' + "[" * n + "1" + "]" * n + "}"
    ),
    "tool-schema": lambda n: (
        '{"model": "gemini:gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}],'
        ' "tools": [{"type": "function", "function": {"name": "f", "parameters": '
        + '{"type": "object", "properties": {"a": ' * n
        + '{"type": "string"}'
        + "}}" * n
        + "}}]}"
    ),
}


@pytest.mark.parametrize("depth", [300, 600, 5000])
@pytest.mark.parametrize("where", list(DEEP))
def test_deep_nesting(fuzz_proxy: ProxyProcess, http: httpx.Client, where: str, depth: int) -> None:
    """JSON nested `depth` levels deep (well under the size limit): a 200 or a clean 4xx, never an
    internal error."""
    raw = DEEP[where](depth).encode()
    assert len(raw) < MAX_BYTES
    r = send(http, "POST", "/v1/chat/completions", raw, {"content-type": "application/json"})
    common(fuzz_proxy, r)
    check_chat(r, False)


SURROGATES = {
    "content": {"messages": [{"role": "user", "content": "a \ud800 b"}]},
    "model": {"model": "openai/gpt-4o-\udfff", "messages": [{"role": "user", "content": "hi"}]},
    "extra-field": {"messages": [{"role": "user", "content": "hi"}], "metadata": {"k": "\ud83d"}},
    "text-part": {"messages": [{"role": "user", "content": [{"type": "text", "text": "\udc00x"}]}]},
}


@pytest.mark.parametrize("backend", ["openrouter", "gemini"])
@pytest.mark.parametrize("where", list(SURROGATES))
def test_lone_surrogates(http: httpx.Client, fuzz_proxy: ProxyProcess, where: str, backend: str) -> None:
    """A lone UTF-16 surrogate is valid JSON (`"\\ud800"`) but no valid UTF-8: any client can send one.
    The answer must be a completion or a clean 4xx, never an internal error."""
    body = {"model": "openai/gpt-4o-mini" if backend == "openrouter" else "gemini:gemini-2.5-flash"}
    body |= SURROGATES[where] | {"stream": where == "content"}
    r = send(
        http, "POST", "/v1/chat/completions", json.dumps(body).encode(), {"content-type": "application/json"}
    )
    common(fuzz_proxy, r)
    check_chat(r, where == "content")


@pytest.mark.parametrize("options", [[1], "yes", 5], ids=["list", "string", "number"])
@pytest.mark.parametrize(
    "model,text",
    [("openai/gpt-4o-mini", "!/help"), ("gemini:gemini-2.5-flash", "hi")],
    ids=["command", "gemini"],
)
def test_stream_options_not_an_object(
    http: httpx.Client, fuzz_proxy: ProxyProcess, model: str, text: str, options: Any
) -> None:
    """`stream_options` that is not an object, on a streamed request: a 400 naming it (as OpenAI answers)
    or a stream that ignores it, never an internal error."""
    body = {
        "model": model,
        "stream": True,
        "stream_options": options,
        "messages": [{"role": "user", "content": text}],
    }
    r = send(
        http, "POST", "/v1/chat/completions", json.dumps(body).encode(), {"content-type": "application/json"}
    )
    common(fuzz_proxy, r)
    check_chat(r, True)


KEY_COMMANDS = [
    "!/A( {key}",
    "!/set(project={key})",
    "!/set(model={key})",
    "!/set(backend={key})",
    "!/help({key})",
    "!/set({key}=1)",
    "!/route-append(name=x, {key})",
    "!/create-failover-route(name={key})",
]


@pytest.mark.parametrize("command", KEY_COMMANDS)
def test_keys_in_commands_are_not_echoed(http: httpx.Client, fuzz_proxy: ProxyProcess, command: str) -> None:
    """A configured key typed into a command (pasted by mistake) must not come back in the proxy's
    answer, which mitmweb shows and saved flows keep: it is redacted like everywhere else."""
    text = command.format(key=OPENROUTER_KEYS[0])
    stream = command.startswith("!/A")  # one as a stream: the same text, as SSE
    body = {"model": "openai/gpt-4o-mini", "stream": stream, "messages": [{"role": "user", "content": text}]}
    r = send(http, "POST", "/v1/chat/completions", json.dumps(body).encode(), {"x-session-id": "keys"})
    check_chat(r, stream)
    assert not leaks(r.content, fuzz_proxy.secrets()), f"{command!r}: the key came back: {r.text[:300]}"


def test_key_given_as_a_command_value_is_not_forwarded(
    http: httpx.Client, fuzz_proxy: ProxyProcess, fakes: tuple[LoadOpenRouter, LoadGemini]
) -> None:
    """`!/set(project=<a Gemini key>)`: the value must not reach OpenRouter (in its `project` field)."""
    msg = f"!/set(project={GEMINI_KEYS[0]}) hello there"
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": msg}]}
    r = send(http, "POST", "/v1/chat/completions", json.dumps(body).encode(), {"x-session-id": "key-project"})
    check_chat(r, False)
    sent = [b for b in fakes[0].recent if b"hello there" in b]
    assert sent, "the request did not reach the fake OpenRouter"
    assert not leaks(sent[-1], [GEMINI_KEYS[0]]), f"a Gemini key was sent to OpenRouter: {sent[-1][:300]!r}"


def test_history_survives_a_deeply_nested_prompt() -> None:
    """Prompts nested deeper and deeper (each answered 200 or refused cleanly): the history writer must
    record or skip each, and go on recording: after each, a request in a fresh session is in history."""
    ok = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "after"}]}
    broken_at = None
    with (
        LoadOpenRouter() as openrouter,
        LoadGemini() as gemini,
        ProxyProcess(env=env_for(openrouter, gemini)) as p,
        httpx.Client(base_url=p.base_url, trust_env=False, timeout=TIMEOUT) as h,
    ):
        for depth in (150, 300, 450, 600):
            r = h.post("/chat/completions", content=DEEP["content"](depth).encode())
            common(p, r)
            check_chat(r, False)
            session = f"after-{depth}"
            assert h.post("/chat/completions", json=ok, headers={"x-session-id": session}).status_code == 200
            if len(h.get(f"/sessions/{session}/history").json()["data"]) != 1:
                broken_at = depth
                break
        errors = [line for line in p.lines if "Error" in line and not line.startswith(" ")]
    assert broken_at is None, (
        f"history stopped recording after a prompt nested {broken_at} levels deep; log: {errors[:4]}"
    )


def test_fuzz_left_no_tracebacks(fuzz_proxy: ProxyProcess) -> None:
    """After all of the above: the proxy is alive and logged no traceback (an unexpected exception)."""
    assert fuzz_proxy.proc is not None and fuzz_proxy.proc.poll() is None
    with httpx.Client(trust_env=False, timeout=TIMEOUT) as h:
        r = h.post(
            fuzz_proxy.base_url + "/chat/completions",
            json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "still there?"}]},
        )
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "echo: still there?"
    tracebacks = [i for i, line in enumerate(fuzz_proxy.lines) if "Traceback" in line]
    shown = "\n".join("\n".join(fuzz_proxy.lines[i - 1 : i + 12]) for i in tracebacks[:3])
    assert not tracebacks, f"{len(tracebacks)} tracebacks in the proxy log, first ones:\n{shown}"

"""Redactor tests. Timings live in bench/bench_redaction.py, not here (timed asserts flake on busy CI)."""

from __future__ import annotations

import copy
import io
import json
import random
import string
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from addons.mitm import flowview
from addons.security import redaction
from addons.security.logredact import RedactingStream
from addons.security.redaction import MIN_SECRET_LENGTH, REDACTED, Redactor

HEX = "0123456789abcdef"
URLSAFE = string.ascii_letters + string.digits + "-_"
RNG = random.Random(7)
OPENROUTER = ["sk-or-v1-" + "".join(RNG.choices(HEX, k=64)) for _ in range(20)]
GEMINI = ["AIza" + "".join(RNG.choices(URLSAFE, k=35)) for _ in range(20)]
KEYS = OPENROUTER + GEMINI


def reference(text: str, keys: list[str]) -> str:
    """Obviously-correct model: left to right, at each position the longest key that starts there."""
    keys = sorted({k for k in keys if len(k) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
    out: list[str] = []
    i = 0
    while i < len(text):
        hit = next((k for k in keys if text.startswith(k, i)), None)
        if hit:
            out.append(REDACTED)
            i += len(hit)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def test_every_key_is_replaced() -> None:
    r = Redactor(KEYS)
    text = "\n".join(f"key {i}: {k}!" for i, k in enumerate(KEYS)) + " again " + KEYS[3] + KEYS[25]
    out = r.redact(text)
    assert not any(k in out for k in KEYS)
    assert out.count(REDACTED) == len(KEYS) + 2
    assert out.startswith(f"key 0: {REDACTED}!\nkey 1: {REDACTED}!")
    assert out.endswith(f" again {REDACTED}{REDACTED}")
    assert r.contains_secret(text)
    assert not r.contains_secret(out)


def test_text_without_keys_is_untouched() -> None:
    r = Redactor(KEYS)
    text = "sk-or-v1- is the OpenRouter prefix, AIza the Gemini one; " + OPENROUTER[0][:-1]
    assert r.redact(text) is text
    assert not r.contains_secret(text)


def test_longest_match_wins_for_keys_sharing_a_prefix() -> None:
    short, long = "sk-or-v1-abcdef12", "sk-or-v1-abcdef1234567"
    for keys in ([short, long], [long, short]):
        r = Redactor(keys)
        assert r.redact(f"<{long}>") == f"<{REDACTED}>"  # no "34567" left over
        assert r.redact(f"<{short}>") == f"<{REDACTED}>"
        assert r.redact(f"<{short}9>") == f"<{REDACTED}9>"


def test_overlapping_keys_leftmost_wins_and_nothing_is_left() -> None:
    a, b = "AAAABBBBCCCC", "BBBBCCCCDDDD"
    r = Redactor([a, b])
    text = "x AAAABBBBCCCCDDDD y BBBBCCCCDDDD"
    out = r.redact(text)
    assert out == f"x {REDACTED}DDDD y {REDACTED}"
    assert out == reference(text, [a, b])


def test_short_keys_are_ignored_and_duplicates_collapse() -> None:
    r = Redactor(["short", "", "1234567", "12345678", "12345678"])
    assert r.active
    assert r.redact("short 1234567 12345678") == f"short 1234567 {REDACTED}"
    assert not Redactor(["short", "x" * (MIN_SECRET_LENGTH - 1)]).active
    assert not Redactor([]).active


def test_inactive_redactor_is_a_no_op() -> None:
    r = Redactor([])
    assert r.redact("anything sk-or-v1-x") == "anything sk-or-v1-x"
    assert not r.contains_secret("anything")
    obj = {"a": ["b", ("c",)]}
    out = r.redact_json(obj)
    assert out == obj and out is not obj and out["a"] is not obj["a"]


def test_keys_with_regex_metacharacters() -> None:
    keys = ["a.b*c+d?(e)[f]{g}|h^$\\", "........"]
    r = Redactor(keys)
    assert r.redact("x a.b*c+d?(e)[f]{g}|h^$\\ y") == f"x {REDACTED} y"
    assert r.redact("abcdefgh") == "abcdefgh"  # '.' is literal
    assert r.redact("..........") == f"{REDACTED}.."


def test_unicode_keys_and_text() -> None:
    key = "ключ-секрет-🔑-123"
    r = Redactor([key])
    assert r.redact(f"héllo {key} wörld") == f"héllo {REDACTED} wörld"


def test_dense_anchor_hits_fall_back_and_stay_correct(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = ["aaaaaaaaaa", "aaaaaaab12", "aaaab1234567"]
    text = ("a" * 37 + "b12 aaaab1234567 ") * 400
    expected = reference(text, keys)
    r = Redactor(keys)
    assert r.redact(text) == expected  # takes the re.sub fallback (thousands of anchor hits)
    monkeypatch.setattr(redaction, "_MAX_CANDIDATES", 10**9)
    assert r.redact(text) == expected  # the anchor path agrees
    assert r.contains_secret(text)


def test_redact_json_deep_copy_including_dict_keys() -> None:
    r = Redactor(KEYS)
    k1, k2 = OPENROUTER[0], GEMINI[0]
    body: dict[str, Any] = {
        "model": "openrouter:openai/gpt-4o",
        "messages": [
            {"role": "system", "content": f"my key is {k1}"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"and {k2}, {k1}"},
                    {"type": "image_url", "image_url": {"url": f"https://x.test/?key={k2}"}},
                ],
            },
        ],
        "metadata": {k1: ("tuple", k2, 3, None, True, 1.5)},
        "n": 1,
        "long": "x" * 5000 + k2 + "y" * 5000,
    }
    before = copy.deepcopy(body)
    out = r.redact_json(body)
    assert body == before  # input untouched
    assert out == {
        "model": "openrouter:openai/gpt-4o",
        "messages": [
            {"role": "system", "content": f"my key is {REDACTED}"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"and {REDACTED}, {REDACTED}"},
                    {"type": "image_url", "image_url": {"url": f"https://x.test/?key={REDACTED}"}},
                ],
            },
        ],
        "metadata": {REDACTED: ("tuple", REDACTED, 3, None, True, 1.5)},
        "n": 1,
        "long": "x" * 5000 + REDACTED + "y" * 5000,
    }
    assert isinstance(out["metadata"][REDACTED], tuple)
    # A real copy: changing it does not reach the original.
    out["messages"][0]["content"] = "changed"
    out["messages"].append({})
    assert body == before


def test_redact_json_scalars() -> None:
    r = Redactor(KEYS)
    assert r.redact_json(OPENROUTER[1]) == REDACTED
    for v in (None, 1, 2.5, True, b"bytes " + OPENROUTER[1].encode()):
        assert r.redact_json(v) == v


# --- properties -----------------------------------------------------------------------------------

# Keys come from an alphabet without '[' / ']' so that no key can be (part of) the REDACTED marker.
key_alphabet = st.sampled_from(list("abcAB-_01:/.ø"))
secrets = st.text(key_alphabet, min_size=MIN_SECRET_LENGTH, max_size=16)
texts = st.text(st.one_of(key_alphabet, st.characters()), max_size=200)


@settings(max_examples=300, deadline=None)
@given(
    text=texts,
    keys=st.lists(secrets, min_size=1, max_size=6),
    inserts=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 5)), max_size=6),
)
def test_inserted_keys_never_survive(text: str, keys: list[str], inserts: list[tuple[int, int]]) -> None:
    assume(not any(k in REDACTED for k in keys))
    for pos, which in inserts:
        p = pos % (len(text) + 1)
        text = text[:p] + keys[which % len(keys)] + text[p:]
    r = Redactor(keys)
    out = r.redact(text)
    assert not any(k in out for k in keys)
    assert out == reference(text, keys)
    assert r.contains_secret(text) == (out != text)


@settings(max_examples=300, deadline=None)
@given(text=texts, keys=st.lists(secrets, min_size=1, max_size=6))
def test_text_without_keys_is_unchanged(text: str, keys: list[str]) -> None:
    assume(not any(k in text for k in keys))
    r = Redactor(keys)
    assert r.redact(text) == text
    assert not r.contains_secret(text)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), texts),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(texts, children, max_size=4),
    ),
    max_leaves=20,
)


def model_json(obj: Any, keys: list[str]) -> Any:
    if isinstance(obj, str):
        return reference(obj, keys)
    if isinstance(obj, dict):
        return {model_json(k, keys): model_json(v, keys) for k, v in obj.items()}
    if isinstance(obj, list):
        return [model_json(v, keys) for v in obj]
    if isinstance(obj, tuple):
        return tuple(model_json(v, keys) for v in obj)
    return obj


@settings(max_examples=150, deadline=None)
@given(obj=json_values, keys=st.lists(secrets, min_size=1, max_size=4))
def test_redact_json_matches_per_string_model(obj: Any, keys: list[str]) -> None:
    before = copy.deepcopy(obj)
    out = Redactor(keys).redact_json(obj)
    assert out == model_json(obj, keys)
    assert obj == before


# -- text that was cut, text that is encoded (findings 7 and 12) ---------------------------------------


@pytest.mark.parametrize("cut", range(MIN_SECRET_LENGTH, len(OPENROUTER[0])))
def test_a_key_cut_anywhere_leaves_nothing(cut: int) -> None:
    r = Redactor(KEYS)
    part = OPENROUTER[0][:cut]
    for text, cleaned in (("error: {}", "error: {}"), ("error: {}...", "error: {}..."), ("x {} …", "x {} …")):
        assert r.redact_cut(text.format(part)) == cleaned.format(REDACTED)


def test_redact_cut_keeps_what_is_no_partial_key() -> None:
    r = Redactor(KEYS)
    short = OPENROUTER[0][: MIN_SECRET_LENGTH - 1]
    assert r.redact_cut(f"ends with {short}") == f"ends with {short}"  # too short to tell from text
    middle = f"{OPENROUTER[0][:20]} and more text"  # a prefix that was not cut: the text goes on
    assert r.redact_cut(middle) == middle
    assert r.redact_cut(f"{OPENROUTER[1]} {GEMINI[0][:12]}") == f"{REDACTED} {REDACTED}"


def test_escaped_keys_are_found_and_redacted() -> None:
    r = Redactor(KEYS)
    key = OPENROUTER[0]
    escaped = key.replace("-", "\\u002d")
    raw = '{"messages": [{"role": "user", "content": "k=' + escaped + '"}]}'
    assert not r.contains_secret(raw) and r.decoded_contains_secret(raw)
    assert r.decoded_contains_secret(key.replace("v1", "v\\u0031"))
    assert r.redact_text(f"log: {escaped}") == f"log: {REDACTED}"
    assert not r.decoded_contains_secret('{"a": "\\u002d\\n sk-or-v1- \\/"}')


def test_redact_bytes_decides_on_decoded_text_and_keeps_the_format() -> None:
    r = Redactor(KEYS)
    key = OPENROUTER[0]
    body = ('{"error": {"message": "bad key ' + key.replace("-", "\\u002d") + '", "code": 401}}').encode()
    out = r.redact_bytes(body)
    assert json.loads(out) == {"error": {"message": f"bad key {REDACTED}", "code": 401}}
    sse = b'data: {"choices": []}\n\ndata: {"error": {"message": "key ' + key[:30].encode() + b'..."}}\n\n'
    assert r.redact_bytes(sse) is sse  # no whole key: only a `cut` body is searched for partial ones
    clean = r.redact_bytes(sse, cut=True)
    assert key[:30].encode() not in clean
    assert json.loads(clean.split(b"\n")[2][6:]) == {"error": {"message": f"key {REDACTED}..."}}
    text = f"plain text {key} end".encode()
    assert r.redact_bytes(text) == f"plain text {REDACTED} end".encode()
    untouched = b'{"a": "no key here", "b": [1, 2]}'
    assert r.redact_bytes(untouched) is untouched and r.redact_bytes(untouched, cut=True) is untouched


def test_headers_holding_a_secret_are_masked_whatever_their_name() -> None:
    r = Redactor(KEYS)
    view = flowview.client_request(
        "GET",
        "http://h/v1/models/" + OPENROUTER[0].replace("-", "%2D"),
        {
            "api-key": OPENROUTER[1],
            "x-note": f"Bearer {GEMINI[0]}",
            "authorization": "Bearer x",
            "accept": "*/*",
        },
        b"",
        r,
    )
    assert dict(view["headers"]) == {
        "api-key": flowview.MASK, "x-note": flowview.MASK, "authorization": flowview.MASK, "accept": "*/*"
    }  # fmt: skip
    assert view["url"] == f"http://h/v1/models/{REDACTED}"


def test_the_flow_dump_stream_redacts_each_write() -> None:
    out = io.StringIO()
    stream = RedactingStream(out, Redactor(KEYS))
    stream.write(f"    authorization: {OPENROUTER[0]}\n")
    stream.write('    {"content": "' + GEMINI[0].replace("-", "\\u002d") + '"}\n')
    stream.flush()
    assert not any(k in out.getvalue() for k in KEYS) and out.getvalue().count(REDACTED) == 2

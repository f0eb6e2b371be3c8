"""Replace configured API keys in prompt text (and whole JSON bodies) before they leave the proxy.

Pure Python. Matching is exact and case-sensitive. Where matches overlap, the leftmost wins and, among
matches starting at the same place, the longest (so a key that extends another is removed whole).

Speed: a 1 MB prompt must cost a few milliseconds even with 40 keys. Python's `re` runs a
40-way alternation far slower than `str.find` skips through text in C per needle (longer needles are
faster; figures in bench/README.md). So keys are grouped by their first characters and each group's
common prefix is searched with `str.find` (realistic keys give two groups: "sk-or-v1-" and "AIza..."); only
at those rare hits does a per-group regex decide which key, if any, is there. The replacement itself is
one left-to-right pass over the text. Text that is dense with anchor hits (adversarial, e.g. a key of
"aaaaaaaa" against a run of a's) falls back to a single `re.sub`, which stays linear.

Whatever the encoding, the decision is taken on decoded text: JSON can spell a key's characters as
`\\u002d`, so bodies are decoded (or their escapes resolved) before they are searched. Text that was cut
(error excerpts, "…"-shortened messages) may end mid-key: `redact_cut` also removes such a partial key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from translators import json_codec

REDACTED = "[REDACTED_API_KEY]"
MIN_SECRET_LENGTH = 8
_GROUP_BY = 4  # keys sharing this many leading characters share one anchor search
_MAX_CANDIDATES = 4096  # above this many anchor hits, one regex pass is cheaper than a Python loop
_SHORT_STRING = 512  # redact_json: up to this length one anchor regex search beats redact()'s finds
_CUT_MARKS = ("...", "…")  # how this project and providers mark a shortened text
# JSON escapes that can spell a key's characters (keys hold no quotes, backslashes or control characters).
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\/")


class _Group:
    """Keys with a common prefix: `anchor` is found with str.find, `pattern` says which key starts there."""

    __slots__ = ("anchor", "pattern")

    def __init__(self, keys: list[str]) -> None:
        self.anchor = _common_prefix(keys)
        # Longest first: re alternation takes the first alternative that matches.
        self.pattern = re.compile("|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True)))


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        # Shorter keys would redact ordinary words; the caller warns about them.
        keys = sorted({s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH})
        self._keys: tuple[str, ...] = tuple(keys)
        self._slash = any("/" in k for k in keys)
        # A \uXXXX escape of an ASCII character starts `\u00`: searching that instead of `\u` skips
        # most of the escapes JSON text is full of (~40 % faster on a 200 KB agent request).
        self._escape_mark = "\\u00" if all(k.isascii() for k in keys) else "\\u"
        groups: dict[str, list[str]] = {}
        for k in keys:
            groups.setdefault(k[:_GROUP_BY], []).append(k)
        self._groups = tuple(_Group(g) for g in groups.values())
        self._anchor_re = re.compile("|".join(re.escape(g.anchor) for g in self._groups) or "(?!)")
        self._all = (
            re.compile("|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))) if keys else None
        )
        self._clean: bytes | None = None  # see body_holds_secret

    @property
    def active(self) -> bool:
        return bool(self._keys)

    def _matches(self, text: str, first_only: bool = False) -> list[tuple[int, int]] | None:
        """Non-overlapping (start, end) of keys in `text`, leftmost then longest; None = too many hits."""
        best: dict[int, int] = {}  # start -> end of the longest key starting there
        hits = 0
        for g in self._groups:
            find, match, anchor = text.find, g.pattern.match, g.anchor
            i = find(anchor)
            while i >= 0:
                hits += 1
                if hits > _MAX_CANDIDATES:
                    return None
                m = match(text, i)
                if m is not None:
                    if first_only:
                        return [m.span()]
                    # Keys starting here all share these first characters, so they are in this group
                    # and its longest-first pattern already picked the longest.
                    best[i] = m.end()
                i = find(anchor, i + 1)  # +1, not +len: occurrences may overlap
        spans: list[tuple[int, int]] = []
        last = 0
        for s in sorted(best):
            if s >= last:
                last = best[s]
                spans.append((s, last))
        return spans

    def redact(self, text: str) -> str:
        """Every occurrence of every key -> REDACTED, in one pass; text without keys comes back as is."""
        if self._all is None or len(text) < MIN_SECRET_LENGTH:
            return text
        spans = self._matches(text)
        if spans is None:
            return self._all.sub(REDACTED, text)
        if not spans:
            return text
        out: list[str] = []
        cur = 0
        for s, e in spans:
            out.append(text[cur:s])
            out.append(REDACTED)
            cur = e
        out.append(text[cur:])
        return "".join(out)

    def contains_secret(self, text: str) -> bool:
        if self._all is None or len(text) < MIN_SECRET_LENGTH:
            return False
        spans = self._matches(text, first_only=True)
        if spans is None:
            return self._all.search(text) is not None
        return bool(spans)

    def redact_cut(self, text: str) -> str:
        """`redact`, for text that may have been cut mid-key: a partial key (at least MIN_SECRET_LENGTH
        leading characters of a key) at the end, or before a cut mark ("...", " …"), goes too.
        Such text is a message, not JSON: escapes are resolved first, so they cannot hide a partial key."""
        if self._escaped(text):
            text = _ESCAPE.sub(_unescape, text)
        text = self.redact(text)
        if self._all is None:
            return text
        spans = []
        for key in self._keys:
            head = key[:MIN_SECRET_LENGTH]
            i = text.find(head)
            while i >= 0:
                n = _common_length(text, i, key)
                end = i + n
                rest = text[end : end + 4].lstrip()
                if n < len(key) and (not rest or rest.startswith(_CUT_MARKS)):
                    spans.append((i, end))
                i = text.find(head, i + 1)
        out, cur = [], 0
        for s, e in sorted(spans):
            if s >= cur:
                out += [text[cur:s], REDACTED]
                cur = e
        return "".join(out) + text[cur:] if spans else text

    def _escaped(self, text: str) -> bool:
        """Whether text holds a JSON escape that could spell a key character (one search per MB of
        text when no key holds a '/', as real keys don't)."""
        return self._escape_mark in text or (self._slash and "\\/" in text)

    def decoded_contains_secret(self, text: str) -> bool:
        """Whether a key is in JSON text once its escapes are resolved (`sk\\u002dor…` is `sk-or…`)."""
        if self.contains_secret(text):
            return True
        if self._all is None or not self._escaped(text):
            return False
        return self.contains_secret(_ESCAPE.sub(_unescape, text))

    def body_holds_secret(self, body: bytes) -> bool:
        """`decoded_contains_secret` for a body. The last body found clean is remembered (by identity:
        bytes do not change), so that showing it afterwards (`redact_bytes`) costs no second search of
        what may be hundreds of KB."""
        if self.decoded_contains_secret(body.decode("utf-8", errors="replace")):
            return True
        self._clean = body
        return False

    def redact_bytes(self, body: bytes, cut: bool = False) -> bytes:
        """A body of any kind with every key removed, decided on decoded text: JSON is decoded and
        redacted string by string (so it stays valid JSON), SSE event by event, other text as text.
        A body without a key comes back as is. `cut`: its strings may end mid-key (see `redact_cut`)."""
        if self._all is None or len(body) < MIN_SECRET_LENGTH or (body is self._clean and not cut):
            return body
        text = body.decode("utf-8", errors="replace")
        if not cut and not self.decoded_contains_secret(text):
            return body
        data = _loads(text)
        if data is not None:
            clean = self.redact_json(data, cut)
            return body if clean == data else json_codec.dumps(clean)
        lines = text.split("\n")
        out = [self._redact_line(line, cut) for line in lines]
        return body if out == lines else "\n".join(out).encode()

    def _redact_line(self, line: str, cut: bool) -> str:
        """One line of text or SSE: a `data:` field holding JSON stays JSON."""
        if line.startswith("data:"):
            data = _loads(line[5:])
            if data is not None:
                clean = self.redact_json(data, cut)
                return line if clean == data else "data: " + json_codec.dumps(clean).decode()
        return self.redact_cut(line) if cut else self.redact_text(line)

    def redact_text(self, text: str) -> str:
        """`redact` for text that may hold JSON escapes: where an escaped key hides, escapes are resolved."""
        text = self.redact(text)
        if self._escaped(text):
            unescaped = _ESCAPE.sub(_unescape, text)
            if self.contains_secret(unescaped):
                return self.redact(unescaped)
        return text

    def redact_json(self, obj: Any, cut: bool = False) -> Any:
        """A copy of `obj` with every string redacted, dict keys included, through dicts, lists and tuples.

        Other values (numbers, None, bools, unknown objects) are shared, not copied. Two dict keys that
        redact to the same text collapse into one entry (the later value wins). `cut`: strings may end
        mid-key (error messages); each goes through `redact_cut` (slower, for small bodies).
        """
        if self._all is None:
            return _copy(obj)
        if cut:
            return _walk(obj, self.redact_cut)
        # Request bodies can hold tens of thousands of short strings (tool schemas, ids), so the walk is
        # one function with the per-string test inlined: a short string costs one C-level regex search
        # for any group anchor; long ones go straight to redact(), whose str.find scan is faster there.
        min_len, hit, redact = MIN_SECRET_LENGTH, self._anchor_re.search, self.redact

        def walk(o: Any) -> Any:
            cls = o.__class__
            if cls is str:
                if len(o) < min_len or (len(o) <= _SHORT_STRING and hit(o) is None):
                    return o
                return redact(o)
            if cls is dict:
                return {walk(k): walk(v) for k, v in o.items()}
            if cls is list:
                return [walk(v) for v in o]
            if cls is tuple:
                return tuple(walk(v) for v in o)
            # Subclasses (rare) take the slower isinstance route.
            if isinstance(o, str):
                return redact(o)
            if isinstance(o, dict):
                return {walk(k): walk(v) for k, v in o.items()}
            if isinstance(o, list):
                return [walk(v) for v in o]
            if isinstance(o, tuple):
                return tuple(walk(v) for v in o)
            return o

        return walk(obj)


def _walk(o: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(o, str):
        return fn(o)
    if isinstance(o, dict):
        return {_walk(k, fn): _walk(v, fn) for k, v in o.items()}
    if isinstance(o, list):
        return [_walk(v, fn) for v in o]
    if isinstance(o, tuple):
        return tuple(_walk(v, fn) for v in o)
    return o


def _common_length(text: str, start: int, key: str) -> int:
    """How many leading characters of `key` text holds from `start` on."""
    n = 0
    limit = min(len(key), len(text) - start)
    while n < limit and text[start + n] == key[n]:
        n += 1
    return n


def _unescape(m: re.Match[str]) -> str:
    return chr(int(m.group(1), 16)) if m.group(1) else "/"


def _loads(text: str) -> Any:
    """Parsed JSON, or None for anything else (a JSON null is None too: nothing to redact in it)."""
    stripped = text.strip()
    if not stripped or stripped[0] not in '{["':
        return None
    try:
        return json_codec.loads(stripped)
    except (ValueError, UnicodeError):
        return None


def _common_prefix(keys: list[str]) -> str:
    first, last = min(keys), max(keys)  # the sorted extremes bound every other key's shared prefix
    n = 0
    while n < len(first) and first[n] == last[n]:
        n += 1
    return first[:n]


def _copy(obj: Any) -> Any:
    """Copy the dict/list/tuple structure (strings are immutable and shared)."""
    if isinstance(obj, dict):
        return {k: _copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_copy(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_copy(v) for v in obj)
    return obj

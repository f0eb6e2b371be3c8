"""Replace configured API keys in prompt text (and whole JSON bodies) before they leave the proxy.

Pure Python. Matching is exact and case-sensitive. Where matches overlap, the leftmost wins and, among
matches starting at the same place, the longest (so a key that extends another is removed whole).

Speed: a 1 MB prompt must cost a few milliseconds even with 40 keys. Python's `re` runs a
40-way alternation at ~15 ms/MB, while `str.find` skips through text in C at 0.05-0.5 ms/MB per needle
(longer needles are faster). So keys are grouped by their first characters and each group's common
prefix is searched with `str.find` (realistic keys give two groups: "sk-or-v1-" and "AIza..."); only
at those rare hits does a per-group regex decide which key, if any, is there. The replacement itself is
one left-to-right pass over the text. Text that is dense with anchor hits (adversarial, e.g. a key of
"aaaaaaaa" against a run of a's) falls back to a single `re.sub`, which stays linear.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[REDACTED_API_KEY]"
MIN_SECRET_LENGTH = 8
_GROUP_BY = 4  # keys sharing this many leading characters share one anchor search
_MAX_CANDIDATES = 4096  # above this many anchor hits, one regex pass is cheaper than a Python loop
_SHORT_STRING = 512  # redact_json: up to this length one anchor regex search beats redact()'s finds


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
        groups: dict[str, list[str]] = {}
        for k in keys:
            groups.setdefault(k[:_GROUP_BY], []).append(k)
        self._groups = tuple(_Group(g) for g in groups.values())
        self._anchor_re = re.compile("|".join(re.escape(g.anchor) for g in self._groups) or "(?!)")
        self._all = (
            re.compile("|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))) if keys else None
        )

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

    def redact_json(self, obj: Any) -> Any:
        """A copy of `obj` with every string redacted, dict keys included, through dicts, lists and tuples.

        Other values (numbers, None, bools, unknown objects) are shared, not copied. Two dict keys that
        redact to the same text collapse into one entry (the later value wins).
        """
        if self._all is None:
            return _copy(obj)
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

"""Deterministic repair of tool-call arguments that are not valid JSON.

Weak models fence their JSON in markdown, leave trailing commas, quote with single quotes, write Python's
True/False/None, leave keys unquoted, put raw newlines or Windows paths inside strings, forget closing
brackets, or stop mid-way (max_tokens). Each of those has one fix here, applied by a lenient parser
that reads the text once and writes strict JSON. A value the text was cut inside (an unterminated
string, a key without its value, `tru`) is dropped, never guessed: the caller keeps a repair only if the
result validates against the tool's schema, so a missing required field rejects it.

Valid JSON is never touched (`repair` returns None for it), and a repair is valid JSON, so repairing a
repair changes nothing. Nothing else is inferred: text that still is not JSON (two objects in a row,
prose around it, a missing comma) is left as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from translators import json_codec

MAX_CHARS = 1 << 20  # longer arguments are left as they are (a repair is a pure-Python parse)
MAX_DEPTH = 64

FENCE = "code fence"
TRAILING_COMMA = "trailing comma"
SINGLE_QUOTES = "single quotes"
PYTHON_LITERALS = "Python literals"
UNQUOTED_KEYS = "unquoted keys"
RAW_CONTROL = "raw control characters"
BAD_ESCAPES = "invalid escapes"
UNCLOSED = "missing closing brackets"
TRUNCATED = "truncated value dropped"
EXTRA_CLOSERS = "extra closing brackets"
EMPTY = "empty arguments"

_FENCED = re.compile(r"\A```[A-Za-z0-9_-]*[ \t]*\r?\n?(.*?)\r?\n?```\Z", re.DOTALL)
_OPENING_FENCE = re.compile(r"\A```[A-Za-z0-9_-]*[ \t]*\r?\n")  # a fenced answer cut before its end
_WS = re.compile(r"[ \t\r\n]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_WORD = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_PLAIN = {'"': re.compile(r'[^"\\\x00-\x1f]+'), "'": re.compile(r"[^'\\\x00-\x1f]+")}
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_UNICODE = re.compile(r"u(?:([dD][89abAB][0-9A-Fa-f]{2})\\u([dD][c-fC-F][0-9A-Fa-f]{2})|([0-9A-Fa-f]{4}))")
_HEX_PREFIX = re.compile(r"[0-9A-Fa-f]{0,3}")  # what is left of a \uXXXX escape the text ends in
_NUMBER_TAIL = re.compile(r"[0-9.eE+-]*")  # a number the text ends in (or ends a little after)
_LITERALS = {"true": True, "false": False, "null": None}
_PYTHON = {"True": True, "False": False, "None": None}


@dataclass(frozen=True, slots=True)
class Repaired:
    text: str  # strict JSON
    rules: tuple[str, ...]  # what was fixed, in the order first met


def repair(text: str) -> Repaired | None:
    """Strict JSON for `text`, or None when `text` is valid JSON already or no rule here makes it so."""
    if len(text) > MAX_CHARS or _valid(text):
        return None
    rules: list[str] = []
    body = text.strip()
    if not body:
        return Repaired("{}", (EMPTY,))
    if (m := _FENCED.match(body) or _OPENING_FENCE.match(body)) is not None:
        rules.append(FENCE)
        body = (m.group(1) if m.re is _FENCED else body[m.end() :]).strip()
        if _valid(body):
            return Repaired(body, tuple(rules))
    try:
        value = _Lenient(body, rules).document()
    except (_Unreadable, _Cut, RecursionError):
        return None
    return Repaired(json_codec.dumps(value).decode(), tuple(rules))


def _valid(text: str) -> bool:
    try:
        json_codec.loads(text)
    except (json_codec.JSONDecodeError, RecursionError):
        return False
    return True


class _Unreadable(ValueError):
    """No rule here reads this text."""


class _Cut(ValueError):
    """The text ends inside a value."""


class _Lenient:
    """A recursive-descent reader of JSON plus the mistakes above, noting each rule it applies."""

    __slots__ = ("i", "n", "rules", "s")

    def __init__(self, s: str, rules: list[str]) -> None:
        self.s, self.n, self.i, self.rules = s, len(s), 0, rules

    def note(self, *rules: str) -> None:
        self.rules.extend(r for r in rules if r not in self.rules)

    def ws(self) -> str:
        """Skips whitespace; the next character, or "" at the end."""
        self.i = _WS.match(self.s, self.i).end()  # type: ignore[union-attr]  # matches the empty string
        return self.s[self.i] if self.i < self.n else ""

    def document(self) -> Any:
        value = self.value(0)
        while self.ws() in ("}", "]") and self.i < self.n:  # `{"a": 1}}`: closers of nothing
            self.note(EXTRA_CLOSERS)
            self.i += 1
        if self.i < self.n:
            raise _Unreadable("text after the value")
        return value

    def value(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise _Unreadable("nested too deeply")
        c = self.ws()
        if c == "{":
            out: dict[str, Any] = {}
            self.members("}", lambda: self.member(out, depth))
            return out
        if c == "[":
            items: list[Any] = []
            self.members("]", lambda: items.append(self.value(depth + 1)))
            return items
        if c in ('"', "'"):
            return self.string()
        if c == "-" or c.isdigit():
            return self.number()
        if c == "":
            raise _Cut("no value")
        return self.word()

    def members(self, closer: str, read: Callable[[], None]) -> None:
        """The members of an object or array, up to `closer` or the end of the text."""
        self.i += 1
        first = True
        while True:
            c = self.ws()
            if c == closer:
                self.i += 1
                return
            if c == "":
                self.note(UNCLOSED)
                return
            if not first and not self.comma(closer):
                continue
            first = False
            try:
                read()
            except _Cut:  # the text ends inside this member: the enclosing containers close too
                self.note(TRUNCATED, UNCLOSED)
                self.i = self.n
                return

    def member(self, out: dict[str, Any], depth: int) -> None:
        key = self.key()
        if self.ws() != ":":
            raise _Cut("no colon") if self.i >= self.n else _Unreadable("missing colon")
        self.i += 1
        out[key] = self.value(depth + 1)

    def comma(self, closer: str) -> bool:
        """Reads the comma between members; False for a trailing one (before `closer` or the end)."""
        if self.s[self.i] != ",":
            raise _Unreadable("missing comma")
        self.i += 1
        if self.ws() in (closer, ""):
            self.note(TRAILING_COMMA)
            return False
        return True

    def key(self) -> str:
        if self.s[self.i] in ('"', "'"):
            return self.string()
        m = _WORD.match(self.s, self.i)
        if m is None:
            raise _Unreadable("not a key")
        self.note(UNQUOTED_KEYS)
        self.i = m.end()
        return m.group()

    def string(self) -> str:
        quote = self.s[self.i]
        if quote == "'":
            self.note(SINGLE_QUOTES)
        self.i += 1
        plain, s, parts = _PLAIN[quote], self.s, []
        while True:
            if (m := plain.match(s, self.i)) is not None:
                parts.append(m.group())
                self.i = m.end()
            if self.i >= self.n:
                raise _Cut("unterminated string")
            c = s[self.i]
            self.i += 1
            if c == quote:
                return "".join(parts)
            if c == "\\":
                parts.append(self.escape(quote))
            else:
                self.note(RAW_CONTROL)
                parts.append(c)

    def escape(self, quote: str) -> str:
        s, i = self.s, self.i
        if i >= self.n:
            raise _Cut("unterminated escape")
        c = s[i]
        if c in _ESCAPES:
            self.i += 1
            return _ESCAPES[c]
        if c == "'":  # Python's \' (needless inside double quotes, and no JSON escape)
            self.i += 1
            if quote == '"':
                self.note(BAD_ESCAPES)
            return "'"
        if c == "u":
            if (m := _UNICODE.match(s, i)) is not None:
                self.i = m.end()
                return _code_point(m)
            if _HEX_PREFIX.fullmatch(s, i + 1):
                raise _Cut("unterminated escape")
        self.note(BAD_ESCAPES)  # `C:\Users`, `\d+`: the backslash was meant literally
        return "\\"

    def number(self) -> int | float:
        if _NUMBER_TAIL.fullmatch(self.s, self.i):
            # The text ends in this number, which may have been cut (`12` of `125`): dropped, not guessed.
            raise _Cut("number at the end")
        m = _NUMBER.match(self.s, self.i)
        if m is None:
            raise _Unreadable("not a number")
        self.i = m.end()
        return json_codec.loads(m.group())  # type: ignore[no-any-return]

    def word(self) -> Any:
        m = _WORD.match(self.s, self.i)
        if m is None:
            raise _Unreadable("not a value")
        word = m.group()
        self.i = m.end()
        if word in _LITERALS:
            return _LITERALS[word]
        if word in _PYTHON:
            self.note(PYTHON_LITERALS)
            return _PYTHON[word]
        if self.i >= self.n and any(lit.startswith(word) for lit in (*_LITERALS, *_PYTHON)):
            raise _Cut("cut literal")
        raise _Unreadable("not a value")


def _code_point(m: re.Match[str]) -> str:
    """A \\uXXXX escape, or a surrogate pair of two (an emoji). A lone surrogate has no UTF-8 form:
    text holding one is left as it is."""
    if m.group(3) is None:
        return chr(0x10000 + ((int(m.group(1), 16) - 0xD800) << 10) + (int(m.group(2), 16) - 0xDC00))
    code = int(m.group(3), 16)
    if 0xD800 <= code < 0xE000:
        raise _Unreadable("lone surrogate")
    return chr(code)

"""The argument list of an in-chat command: `(key=value, "quoted", plain)`, and where a malformed one ends.

See parser.py for the grammar. A small hand parser over possessive regexes: one linear pass, no
backtracking blow-up on hostile text.
"""

from __future__ import annotations

import re

# Key at the start of an argument: `  key  =`.
_KEY_EQ_RE = re.compile(r"[ \t]*([A-Za-z_][A-Za-z0-9_-]*+)[ \t]*=")
# Unquoted value: stops at the characters that end or nest an argument.
_UNQUOTED_RE = re.compile(r"[^,()\n]*+")
# Quoted bodies; possessive so an unclosed quote fails in one linear pass.
_QUOTED_RE = {
    '"': re.compile(r'(?:[^"\\]++|\\.)*+"', re.DOTALL),
    "'": re.compile(r"(?:[^'\\]++|\\.)*+'", re.DOTALL),
}
_UNESCAPE_RE = re.compile(r"\\([\\'\"])")
WS = " \t\r\f\v"  # trimmed around keys/values; unicode spaces are content
_WS_RE = re.compile(r"[ \t\r\f\v]*+")
_UNCLOSED = "unclosed '(': no ')' before the end of the line"


class ArgError(Exception):
    """A malformed argument list.

    `pos` is where the problem is. The bad command is taken to run from `resume` to its closing ")" when
    `depth` > 0 (parentheses still open), else to the end of the line; but it is cut short at the next
    command after `cut_from` (text before `cut_from` was valid argument syntax, e.g. a closed quote).
    """

    def __init__(self, problem: str, pos: int, *, resume: int, depth: int, cut_from: int) -> None:
        super().__init__(problem)
        self.problem = problem
        self.pos = pos
        self.resume = resume
        self.depth = depth
        self.cut_from = cut_from


def _line_end(text: str, pos: int, limit: int) -> int:
    nl = text.find("\n", pos, limit)
    if nl < 0:
        return limit
    return nl - 1 if nl > pos and text[nl - 1] == "\r" else nl


def recover_end(text: str, pos: int, depth: int, limit: int) -> int:
    """Best guess at where a malformed argument list ends: its closing ")" on this line, else line end.

    Every search stops at `limit` (the next command), which keeps many broken commands linear.
    """
    line_end = _line_end(text, pos, limit)
    while depth > 0:
        # Jump ")" to ")" with C-level find/count so deeply nested junk stays cheap.
        close = text.find(")", pos, line_end)
        if close < 0:
            break
        depth += text.count("(", pos, close) - 1
        if depth <= 0:
            return close + 1
        pos = close + 1
    return line_end


def _skip_ws(text: str, pos: int) -> int:
    m = _WS_RE.match(text, pos)
    return m.end() if m else pos


def _describe(c: str) -> str:
    return "end of line" if c == "\n" else repr(c)


def parse_args(text: str, open_pos: int) -> tuple[dict[str, str], list[str], int]:
    """Parse the argument list whose "(" is at `open_pos`. Returns (args, positional, end after ")")."""
    args: dict[str, str] = {}
    positional: list[str] = []
    pos = _skip_ws(text, open_pos + 1)
    if pos < len(text) and text[pos] == ")":
        return args, positional, pos + 1
    while True:
        key: str | None = None
        m = _KEY_EQ_RE.match(text, pos)
        if m:
            key = m.group(1).lower()
            if key in args:
                raise ArgError(f"duplicate argument {key!r}", pos, resume=m.end(), depth=1, cut_from=m.end())
            pos = m.end()
        pos = _skip_ws(text, pos)
        if pos < len(text) and text[pos] in _QUOTED_RE:
            value, pos = _quoted(text, pos, open_pos)
        else:
            value, pos = _unquoted(text, pos, open_pos, key)
        if key is None:
            positional.append(value)
        else:
            args[key] = value
        if text[pos] == ")":
            return args, positional, pos + 1
        pos += 1  # past ','


def _quoted(text: str, pos: int, open_pos: int) -> tuple[str, int]:
    """The quoted value starting at `pos`, and the position of the ',' or ')' after it."""
    c = text[pos]
    q = _QUOTED_RE[c].match(text, pos + 1)
    if q is None:
        # The value cannot be closed anywhere, so give back everything after its line.
        raise ArgError(f"unclosed {c} quote", pos, resume=pos, depth=0, cut_from=pos + 1)
    value = text[pos + 1 : q.end() - 1]
    if "\\" in value:
        value = _UNESCAPE_RE.sub(r"\1", value)
    pos = _skip_ws(text, q.end())
    c = text[pos] if pos < len(text) else ""
    if c in ("", "\n"):
        raise ArgError(_UNCLOSED, open_pos, resume=pos, depth=0, cut_from=q.end())
    if c not in (",", ")"):
        raise ArgError(
            f"unexpected {_describe(c)} after quoted value; expected ',' or ')'",
            pos,
            resume=pos,
            depth=1,
            cut_from=pos,
        )
    return value, pos


def _unquoted(text: str, start: int, open_pos: int, key: str | None) -> tuple[str, int]:
    """The unquoted value starting at `start`, and the position of the ',' or ')' after it."""
    u = _UNQUOTED_RE.match(text, start)
    pos = u.end() if u else start
    value = text[start:pos].strip(WS)
    c = text[pos] if pos < len(text) else ""
    if c == "(":
        raise ArgError(
            "'(' in an unquoted value; quote the value to use parentheses",
            pos,
            resume=pos + 1,
            depth=2,
            cut_from=start,
        )
    if c in ("", "\n"):
        raise ArgError(_UNCLOSED, open_pos, resume=pos, depth=0, cut_from=start)
    if not value:
        what = f'missing value for {key!r} (write {key}="" for an empty one)' if key else "empty argument"
        raise ArgError(what, start, resume=pos, depth=1, cut_from=start)
    if key is None and "=" in value:
        bad = value.split("=", 1)[0].strip(WS)
        what = f"invalid argument name {bad!r}" if bad else "missing argument name before '='"
        raise ArgError(what, start, resume=pos, depth=1, cut_from=start)
    return value, pos

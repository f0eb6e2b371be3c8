"""In-chat commands: find `PREFIX name` / `PREFIX name(args)` in user text and strip them out.

Pure Python (no mitmproxy) so it can be tested and fuzzed on its own.

Grammar (PREFIX defaults to "!/" but is configurable and matched literally):
    command  := PREFIX name [ "(" [ arg { "," arg } ] ")" ]
    name     := ASCII letter, then ASCII letters / digits / "-" / "_"; must not run into a further
                word character (so "!/héllo" is not the command "h")
    arg      := key "=" value | value
    key      := ASCII letter or "_", then ASCII letters / digits / "-" / "_"
    value    := quoted | unquoted
    quoted   := '...' or "..."; may hold commas, parentheses, "=", newlines; backslash escapes
                \\, \\' and \\" (any other backslash is kept literally, so Windows paths survive)
    unquoted := anything but , ( ) and newline; "=" only after a key
Spaces/tabs around keys and values are trimmed. Outside quotes an argument list must end on the
line it started on, so a forgotten ")" costs at most the rest of that line, never the rest of the message;
a malformed command is also cut short where the next command starts.

Scanning is one forward pass: a compiled search for "prefix + name" (fixed text plus a possessive
character class, so no backtracking blow-up) and a small hand parser for the argument list (args.py).
format.py renders a command back to text.

Quoted material never runs (prompt injection: agents paste fetched pages and files into user messages):
a command that starts inside code, an HTML/XML comment or tag, or the content of a standard HTML element
stays in the text untouched; commands inside custom XML elements (`<task>`) still run. See spans.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from addons.conversation.args import ArgError, parse_args, recover_end
from addons.conversation.spans import protected_spans

DEFAULT_PREFIX = "!/"

_HSPACE = " \t"  # what removal tidies up next to a command


@dataclass(frozen=True)
class Command:
    name: str  # lower-cased
    args: dict[str, str]  # key=value args, keys lower-cased, in order
    positional: tuple[str, ...]  # bare args, in order
    raw: str  # exact source text of the command
    span: tuple[int, int]  # position in the text it was found in


@dataclass(frozen=True)
class ParseError:
    message: str  # human-readable: what is wrong and where
    raw: str
    span: tuple[int, int]
    # Lower-cased command name, so callers can ignore errors in commands they don't own.
    name: str = ""


@dataclass(frozen=True)
class ScanResult:
    text: str  # text with recognised commands removed
    commands: tuple[Command, ...]
    errors: tuple[ParseError, ...]


def _parse_at(
    text: str, prefix: str, start: int, name_start: int, name_end: int
) -> tuple[int, Command | ParseError]:
    """Parse the command whose name is text[name_start:name_end]; returns (end, result)."""
    name = text[name_start:name_end].lower()
    end = name_end
    if end < len(text) and text[end] == "(":
        try:
            args, positional, end = parse_args(text, end)
        except ArgError as e:
            # A broken command never swallows the next one ("!/set(x=1 !/hello" is two commands).
            limit = text.find(prefix, e.cut_from)
            if limit < 0:
                limit = len(text)
            end = recover_end(text, e.resume, e.depth, limit) if e.resume < limit else limit
            while end > e.cut_from and text[end - 1] in _HSPACE:
                end -= 1
            end = max(end, name_end + 1)
            raw = text[start:end]
            excerpt = raw if len(raw) <= 60 else raw[:57] + "..."
            where = f"at character {e.pos - start + 1} of the command"
            msg = f"malformed command {excerpt!r}: {e.problem} ({where})"
            return end, ParseError(message=msg, raw=raw, span=(start, end), name=name)
        return end, Command(name, args, tuple(positional), text[start:end], (start, end))
    return end, Command(name, {}, (), text[start:end], (start, end))


def _compile_finder(prefix: str) -> re.Pattern[str]:
    # Possessive: the name is the whole run of name characters, never a backtracked part of it.
    return re.compile(re.escape(prefix) + r"([A-Za-z][A-Za-z0-9_-]*+)")


_finders: dict[str, re.Pattern[str]] = {}


def _finder(prefix: str) -> re.Pattern[str]:
    pat = _finders.get(prefix)
    if pat is None:
        if len(_finders) > 64:  # prefixes are config values; bound the cache anyway
            _finders.clear()
        pat = _finders[prefix] = _compile_finder(prefix)
    return pat


def _rstrip_out(out: list[str], chars: str) -> None:
    """Strip trailing `chars` from the text built so far (which may span several pieces)."""
    while out:
        last = out[-1].rstrip(chars)
        if last:
            out[-1] = last
            return
        out.pop()


def _out_tail(out: list[str]) -> str:
    """Last character of the built text ignoring trailing spaces/tabs ("" at start of text)."""
    for piece in reversed(out):
        stripped = piece.rstrip(_HSPACE)
        if stripped:
            return stripped[-1]
    return ""


def _remove_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """Cut `spans` (sorted, disjoint) out of `text`, tidying only the whitespace the cuts leave behind."""
    if not spans:
        return text
    n = len(text)
    out: list[str] = []
    cur = 0
    i = 0
    while i < len(spans):
        s, e = spans[i]
        # Commands separated only by spaces/tabs go as one block ("!/a !/b" leaves no stray space).
        while i + 1 < len(spans) and not text[e : spans[i + 1][0]].strip(_HSPACE):
            e = spans[i + 1][1]
            i += 1
        i += 1
        if s > cur:
            out.append(text[cur:s])
        left_ws = bool(out) and out[-1][-1] in _HSPACE
        e2 = e
        while e2 < n and text[e2] in _HSPACE:
            e2 += 1
        at_eol = e2 == n or text[e2] == "\n" or text.startswith("\r\n", e2)
        at_bol = _out_tail(out) in ("", "\n")
        if at_bol and at_eol:
            # The command was the whole line: drop the line, including one line break.
            _rstrip_out(out, _HSPACE)
            if e2 < n:
                e2 += 2 if text[e2] == "\r" else 1
            elif out:
                _rstrip_out_newline(out)
            cur = e2
        elif at_bol:
            cur = e2  # keep the line's indentation, drop the gap after the command
        elif at_eol:
            _rstrip_out(out, _HSPACE)
            cur = e2
        else:
            # Mid-line: keep one of the two gaps around the command, or none if it touched text.
            cur = e2 if left_ws else e
    if cur < n:
        out.append(text[cur:])
    return "".join(out)


def _rstrip_out_newline(out: list[str]) -> None:
    """Remove one trailing line break ("\\n" or "\\r\\n") from the built text."""
    last = out[-1]
    cut = 2 if last.endswith("\r\n") else 1 if last.endswith("\n") else 0
    if cut:
        if len(last) == cut:
            out.pop()
        else:
            out[-1] = last[:-cut]


def scan(
    text: str,
    prefix: str = DEFAULT_PREFIX,
    *,
    known: Callable[[str], bool] | None = None,
    strip_unknown: bool = False,
) -> ScanResult:
    """Find commands in `text` and remove the recognised ones.

    - Commands whose (lower-cased) name satisfies `known` (every name when `known` is None) are removed
      and returned in `commands`.
    - Other well-formed commands stay in the text untouched, unless `strip_unknown` is set: then they are
      removed and returned too, so the caller can answer "unknown command".
    - Malformed commands are always reported in `errors`; removed when their name is known (or
      `strip_unknown`), otherwise left in the text.
    If anything was removed and only whitespace remains, the text becomes "" (a command-only message).
    """
    if not prefix:
        raise ValueError("command prefix must not be empty")
    if not isinstance(text, str) or prefix not in text:
        return ScanResult(text if isinstance(text, str) else "", (), ())
    finder = _finder(prefix)
    commands: list[Command] = []
    errors: list[ParseError] = []
    spans: list[tuple[int, int]] = []
    protected: list[tuple[int, int]] | None = None  # computed once a candidate shows up
    pi = 0
    pos = 0
    while True:
        m = finder.search(text, pos)
        if m is None:
            break
        if protected is None:
            protected = protected_spans(text)
        while pi < len(protected) and protected[pi][1] <= m.start():
            pi += 1
        if pi < len(protected) and protected[pi][0] <= m.start():
            pos = protected[pi][1]  # quoted material: left in the text as it is
            continue
        name_end = m.end(1)
        if name_end < len(text) and text[name_end].isalnum():
            # Runs into a non-ASCII letter/digit ("!/héllo"): not a command. A candidate starting further
            # inside this name would end at the same spot and fail the same way, so skip those (this keeps
            # odd prefixes like "a" on a long word linear; a regex lookahead would rescan the word each time).
            pos = max(m.start() + 1, name_end - len(prefix) + 1)
            continue
        end, res = _parse_at(text, prefix, m.start(), m.start(1), name_end)
        remove = strip_unknown or known is None or known(res.name)
        if isinstance(res, ParseError):
            errors.append(res)
        elif remove:
            commands.append(res)
        if remove:
            spans.append(res.span)
        pos = end
    out = _remove_spans(text, spans)
    if spans and not out.strip():
        out = ""
    return ScanResult(out, tuple(commands), tuple(errors))


def scan_content(
    content: str | list[Any] | None, prefix: str = DEFAULT_PREFIX, **kw: Any
) -> tuple[str | list[Any] | None, tuple[Command, ...], tuple[ParseError, ...]]:
    """scan() for an OpenAI message `content`: a string, or a list of parts.

    Text parts are scanned one by one (spans refer to their own part's text); other parts (images, audio,
    files) are kept in order. A text part that stripping leaves empty is dropped. The input is never
    mutated: changed parts are shallow copies.
    """
    if isinstance(content, str):
        r = scan(content, prefix, **kw)
        return r.text, r.commands, r.errors
    if not isinstance(content, list):
        return content, (), ()
    parts: list[Any] = []
    commands: list[Command] = []
    errors: list[ParseError] = []
    for part in content:
        text = part.get("text") if isinstance(part, dict) and part.get("type") == "text" else None
        if not isinstance(text, str):
            parts.append(part)
            continue
        r = scan(text, prefix, **kw)
        commands.extend(r.commands)
        errors.extend(r.errors)
        if r.text == text:
            parts.append(part)
        elif r.text:
            parts.append({**part, "text": r.text})
        # else: nothing but commands in this part, drop it
    return parts, tuple(commands), tuple(errors)

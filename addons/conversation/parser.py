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
character class, so no backtracking blow-up) and a small hand parser for the argument list.

Quoted material never runs (prompt injection: agents paste fetched pages and files into user messages):
a command that starts inside a fenced code block (``` or ~~~, to the end of the text when unclosed),
inline code (`...`, ``...``), an HTML/XML comment, CDATA or declaration, the markup of a tag
(`<div title="...">`), or the content of a standard HTML element (`<div hidden>...</div>`) stays in the
text untouched. Custom XML elements (`<task>`, `<user_query>`) are not HTML: agents wrap the user's own
words in them, so commands inside them still run. See `protected_spans`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_PREFIX = "!/"

_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
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
_WS = " \t\r\f\v"  # trimmed around keys/values; unicode spaces are content
_HSPACE = " \t"  # what removal tidies up next to a command
_WS_RE = re.compile(r"[ \t\r\f\v]*+")


# A line opening a fenced code block; a backtick fence's info string holds no backtick (else inline code).
_FENCE_RE = re.compile(r"^[ \t]*+(`{3,}+(?=[^`\n]*+$)|~{3,}+)", re.MULTILINE)
_TICKS_RE = re.compile(r"`++")
# A start or end tag: name, then attributes (quoted values may hold ">"; no "<" anywhere, which keeps
# every failed attempt within the gap to the next "<", so the whole pass stays linear).
_TAG_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:._-]*+)(?:[\s/](?:[^<>\"']++|\"[^\"<]*+\"|'[^'<]*+')*+)?>")
# Standard HTML elements that take content: what a fetched page hides text in. Custom XML names are left
# out on purpose (agents wrap the user's own prompt in <task> or <user_query>).
HTML_ELEMENTS = frozenset((
    "a", "abbr", "address", "article", "aside", "audio", "b", "bdi", "bdo", "big", "blink", "blockquote",
    "body", "button", "canvas", "caption", "center", "cite", "code", "colgroup", "data", "datalist", "dd",
    "del", "details", "dfn", "dialog", "dir", "div", "dl", "dt", "em", "fieldset", "figcaption", "figure",
    "font", "footer", "form", "frameset", "h1", "h2", "h3", "h4", "h5", "h6", "head", "header", "hgroup",
    "html", "i", "iframe", "ins", "kbd", "label", "legend", "li", "main", "map", "mark", "marquee", "math",
    "menu", "meter", "nav", "noembed", "noframes", "noscript", "object", "ol", "optgroup", "option",
    "output", "p", "picture", "pre", "progress", "q", "rp", "rt", "ruby", "s", "samp", "script", "search",
    "section", "select", "slot", "small", "span", "strike", "strong", "style", "sub", "summary", "sup",
    "svg", "table", "tbody", "td", "template", "textarea", "tfoot", "th", "thead", "time", "title", "tr",
    "tt", "u", "ul", "var", "video"
))  # fmt: skip


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def protected_spans(text: str) -> list[tuple[int, int]]:
    """Sorted, disjoint (start, end) ranges of `text` in which commands never run.

    One forward pass; whichever construct starts first wins (a fence inside a comment is comment text):
    fenced code blocks, inline code spans (a run of N backticks up to the next run of exactly N;
    an unmatched run is literal, as in Markdown), HTML comments / CDATA / declarations (unclosed: to the
    end), tag markup, and the content of HTML elements whose end tag appears.
    """
    n = len(text)
    spans: list[tuple[int, int]] = []
    runs = [(m.start(), m.end()) for m in _TICKS_RE.finditer(text)]
    # For each backtick run, the index of the next run of the same length (its closer), or -1.
    closer = [-1] * len(runs)
    last: dict[int, int] = {}
    for i in range(len(runs) - 1, -1, -1):
        length = runs[i][1] - runs[i][0]
        closer[i] = last.get(length, -1)
        last[length] = i
    open_elements: list[tuple[str, int]] = []
    open_count: dict[str, int] = {}
    fence = _FENCE_RE.search(text)
    lt = text.find("<")
    ri = 0
    pos = 0
    while pos < n:
        while ri < len(runs) and runs[ri][0] < pos:
            ri += 1
        if fence is not None and fence.start(1) < pos:
            fence = _FENCE_RE.search(text, pos)
        if 0 <= lt < pos:
            lt = text.find("<", pos)
        at_fence = fence.start(1) if fence is not None else n
        at_run = runs[ri][0] if ri < len(runs) else n
        at_lt = lt if lt >= 0 else n
        first = min(at_fence, at_run, at_lt)
        if first >= n:
            break
        if fence is not None and first == at_fence:
            mark = fence.group(1)
            # Closed by a line of at least as many of the same character, else open to the end.
            closing = re.compile(rf"^[ \t]*+{re.escape(mark[0])}{{{len(mark)},}}+[ \t]*+\r?$", re.MULTILINE)
            close = closing.search(text, fence.end())
            end = close.end() if close else n
        elif first == at_run:
            j = closer[ri]
            if j < 0:
                pos = runs[ri][1]
                continue
            end = runs[j][1]
        else:
            end = _markup_end(text, lt, open_elements, open_count, spans)
            if end < 0:
                pos = lt + 1
                continue
        spans.append((first, end))
        pos = end
    return _merge(spans)


def _markup_end(
    text: str,
    lt: int,
    open_elements: list[tuple[str, int]],
    open_count: dict[str, int],
    spans: list[tuple[int, int]],
) -> int:
    """End of the markup starting with the "<" at `lt`, or -1 when it is plain text. Pairs HTML elements:
    a matched end tag adds the whole element to `spans`."""
    for opener, closer in (("<!--", "-->"), ("<![CDATA[", "]]>")):
        if text.startswith(opener, lt):
            end = text.find(closer, lt + len(opener))
            return len(text) if end < 0 else end + len(closer)
    if text.startswith(("<!", "<?"), lt) and lt + 2 < len(text) and text[lt + 2].isalpha():
        end = text.find(">", lt)
        return -1 if end < 0 else end + 1
    m = _TAG_RE.match(text, lt)
    if m is None:
        return -1
    name = m.group(2).lower()
    if name in HTML_ELEMENTS:
        if m.group(1):
            if open_count.get(name):
                # Elements left open inside this one are closed with it, as browsers do.
                while True:
                    top, start = open_elements.pop()
                    open_count[top] -= 1
                    if top == name:
                        spans.append((start, m.end()))
                        break
        elif not m.group(0).endswith("/>"):
            open_elements.append((name, lt))
            open_count[name] = open_count.get(name, 0) + 1
    return m.end()


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


class _ArgError(Exception):
    """Internal: a malformed argument list.

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


def _recover_end(text: str, pos: int, depth: int, limit: int) -> int:
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


def _parse_args(text: str, open_pos: int) -> tuple[dict[str, str], list[str], int]:
    """Parse the argument list whose "(" is at `open_pos`. Returns (args, positional, end after ")")."""
    unclosed = "unclosed '(': no ')' before the end of the line"
    args: dict[str, str] = {}
    positional: list[str] = []
    n = len(text)
    pos = _skip_ws(text, open_pos + 1)
    if pos < n and text[pos] == ")":
        return args, positional, pos + 1
    while True:
        key: str | None = None
        m = _KEY_EQ_RE.match(text, pos)
        if m:
            key = m.group(1).lower()
            if key in args:
                raise _ArgError(f"duplicate argument {key!r}", pos, resume=m.end(), depth=1, cut_from=m.end())
            pos = m.end()
        item_start = pos = _skip_ws(text, pos)
        c = text[pos] if pos < n else ""
        if c in _QUOTED_RE:
            q = _QUOTED_RE[c].match(text, pos + 1)
            if q is None:
                # The value cannot be closed anywhere, so give back everything after its line.
                raise _ArgError(f"unclosed {c} quote", pos, resume=pos, depth=0, cut_from=pos + 1)
            value = text[pos + 1 : q.end() - 1]
            if "\\" in value:
                value = _UNESCAPE_RE.sub(r"\1", value)
            pos = _skip_ws(text, q.end())
            c = text[pos] if pos < n else ""
            if c not in (",", ")"):
                if c in ("", "\n"):
                    raise _ArgError(unclosed, open_pos, resume=pos, depth=0, cut_from=q.end())
                raise _ArgError(
                    f"unexpected {_describe(c)} after quoted value; expected ',' or ')'",
                    pos,
                    resume=pos,
                    depth=1,
                    cut_from=pos,
                )
        else:
            u = _UNQUOTED_RE.match(text, pos)
            pos = u.end() if u else pos
            value = text[item_start:pos].strip(_WS)
            c = text[pos] if pos < n else ""
            if c == "(":
                raise _ArgError(
                    "'(' in an unquoted value; quote the value to use parentheses",
                    pos,
                    resume=pos + 1,
                    depth=2,
                    cut_from=item_start,
                )
            if c in ("", "\n"):
                raise _ArgError(unclosed, open_pos, resume=pos, depth=0, cut_from=item_start)
            if not value:
                what = (
                    f'missing value for {key!r} (write {key}="" for an empty one)'
                    if key
                    else "empty argument"
                )
                raise _ArgError(what, item_start, resume=pos, depth=1, cut_from=item_start)
            if key is None and "=" in value:
                bad = value.split("=", 1)[0].strip(_WS)
                what = f"invalid argument name {bad!r}" if bad else "missing argument name before '='"
                raise _ArgError(what, item_start, resume=pos, depth=1, cut_from=item_start)
        if key is None:
            positional.append(value)
        else:
            args[key] = value
        pos += 1  # past ',' or ')'
        if c == ")":
            return args, positional, pos


def _parse_at(
    text: str, prefix: str, start: int, name_start: int, name_end: int
) -> tuple[int, Command | ParseError]:
    """Parse the command whose name is text[name_start:name_end]; returns (end, result)."""
    name = text[name_start:name_end].lower()
    end = name_end
    if end < len(text) and text[end] == "(":
        try:
            args, positional, end = _parse_args(text, end)
        except _ArgError as e:
            # A broken command never swallows the next one ("!/set(x=1 !/hello" is two commands).
            limit = text.find(prefix, e.cut_from)
            if limit < 0:
                limit = len(text)
            end = _recover_end(text, e.resume, e.depth, limit) if e.resume < limit else limit
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


def _needs_quotes(value: str, positional: bool) -> bool:
    return (
        not value
        or value != value.strip(_WS)
        or value[0] in "'\""
        or any(c in value for c in ",()\n")
        or (positional and "=" in value)
    )


def _render_value(value: str, positional: bool) -> str:
    if not _needs_quotes(value, positional):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_command(
    name: str, args: dict[str, str], positional: Sequence[str], prefix: str = DEFAULT_PREFIX
) -> str:
    """Render a command that scan() parses back to the same name/args/positional (values quoted as needed).

    Keyword arguments come first, then positional ones. Raises ValueError for a name or key that the
    grammar cannot express.
    """
    if not prefix:
        raise ValueError("command prefix must not be empty")
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"invalid command name {name!r}")
    seen: set[str] = set()
    items: list[str] = []
    for key, value in args.items():
        if not _KEY_RE.fullmatch(key) or key.lower() in seen:
            raise ValueError(f"invalid or duplicate argument name {key!r}")
        seen.add(key.lower())
        items.append(f"{key}={_render_value(value, positional=False)}")
    items.extend(_render_value(v, positional=True) for v in positional)
    if not items:
        return prefix + name
    return f"{prefix}{name}({', '.join(items)})"

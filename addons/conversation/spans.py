"""Quoted material in chat text: the ranges in which in-chat commands never run.

Agents paste fetched pages and files into user messages, so a command that starts inside a fenced code
block (``` or ~~~, to the end of the text when unclosed), inline code (`...`, ``...``), an HTML/XML
comment, CDATA or declaration, the markup of a tag (`<div title="...">`), or the content of a standard HTML
element (`<div hidden>...</div>`) stays in the text untouched. Custom XML elements (`<task>`, `<user_query>`)
are not HTML: agents wrap the user's own words in them, so commands inside them still run.
"""

from __future__ import annotations

import re

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

"""What the scanning tests share: the prefix, result checks and hypothesis strategies."""

from __future__ import annotations

from hypothesis import strategies as st

from addons.conversation.parser import Command, ParseError, ScanResult

P = "!/"


def only(result: ScanResult) -> Command:
    assert not result.errors, result.errors
    assert len(result.commands) == 1, result.commands
    return result.commands[0]


def check_spans(text: str, r: ScanResult) -> None:
    """Every reported command/error points at its exact source, in order and without overlap."""
    items: list[Command | ParseError] = sorted([*r.commands, *r.errors], key=lambda c: c.span)
    last = 0
    for c in items:
        s, e = c.span
        assert last <= s < e <= len(text)
        assert text[s:e] == c.raw
        last = e


PREFIXES = st.sampled_from(["!/", "$$", ".*", "#", "::", "\\(", "cmd:"])
names = st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True)
keys = st.from_regex(r"[a-z_][a-z0-9_-]{0,8}", fullmatch=True)
# Values lean on the characters the grammar cares about, plus anything at all.
tricky = st.sampled_from(list(",()=\"'\\ \t\n\r!/$.*#:é🎉\x00\u2028"))
values = st.text(st.one_of(tricky, st.characters()), max_size=20)
command_specs = st.tuples(names, st.dictionaries(keys, values, max_size=3), st.lists(values, max_size=3))

noise = st.text(
    st.one_of(st.sampled_from(list("!/()$.*#:,=\"'\\ \n\t\r")), st.characters()),
    max_size=200,
)
# Backticks, "<" and "~" open quoted material (code, markup) in which commands never run.
QUOTING = "`<~"
plain_noise = st.text(
    st.one_of(st.sampled_from(list("!/()$.*#:,=\"'\\ \n\t\r")), st.characters(blacklist_characters=QUOTING)),
    max_size=200,
)
plain_values = st.text(st.one_of(tricky, st.characters(blacklist_characters=QUOTING)), max_size=20)
plain_specs = st.tuples(
    names, st.dictionaries(keys, plain_values, max_size=3), st.lists(plain_values, max_size=3)
)

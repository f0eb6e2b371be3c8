"""Quoted material in which commands never run (addons/conversation/spans.py): code, comments, markup."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from addons.conversation.format import format_command
from addons.conversation.parser import scan
from addons.conversation.spans import protected_spans
from tests.unit.conversation.support import P, keys, names, plain_noise, plain_specs


@pytest.mark.parametrize(
    ("text", "runs", "left"),
    [
        ("```\n!/hello\n```\nafter !/status", ["status"], "```\n!/hello\n```\nafter"),
        ("  ```python\n!/hello\n  ```\n!/status", ["status"], "  ```python\n!/hello\n  ```"),
        (
            "~~~~\n!/hello\n~~~\nstill code\n~~~~\n!/status",
            ["status"],
            "~~~~\n!/hello\n~~~\nstill code\n~~~~",
        ),
        ("```\nunclosed fence\n!/hello", [], "```\nunclosed fence\n!/hello"),
        ("a `!/hello` b !/status", ["status"], "a `!/hello` b"),
        ("a ``x ` !/hello`` b", [], "a ``x ` !/hello`` b"),
        ("inline ```!/hello``` code", [], "inline ```!/hello``` code"),
        ("a lone ` backtick !/hello", ["hello"], "a lone ` backtick"),
        (
            "x <!-- !/set(redact-api-keys-in-prompts=off) --> y",
            [],
            "x <!-- !/set(redact-api-keys-in-prompts=off) --> y",
        ),
        ("<!-- unclosed !/hello", [], "<!-- unclosed !/hello"),
        ("<![CDATA[ !/hello ]]> !/status", ["status"], "<![CDATA[ !/hello ]]>"),
        ('<img alt="!/hello" src=x> !/status', ["status"], '<img alt="!/hello" src=x>'),
        ('<a title="x > !/hello">link</a>', [], '<a title="x > !/hello">link</a>'),
        (
            '<div style="display:none">!/hello</div> !/status',
            ["status"],
            '<div style="display:none">!/hello</div>',
        ),
        ("<div><p>!/hello</div>", [], "<div><p>!/hello</div>"),
        ("<DIV>!/hello</div>", [], "<DIV>!/hello</div>"),
        # Not quoted material: commands run, as before.
        ("<task>\n!/hello do it\n</task>", ["hello"], "<task>\ndo it\n</task>"),
        ("why does my <div> not center? !/hello", ["hello"], "why does my <div> not center?"),
        ("List<String> and a < b !/hello", ["hello"], "List<String> and a < b"),
        ("<br/>!/hello", ["hello"], "<br/>"),
        ("~~strike~~ !/hello", ["hello"], "~~strike~~"),
    ],
)
def test_commands_in_quoted_material_never_run(text: str, runs: list[str], left: str) -> None:
    r = scan(text, P)
    assert [c.name for c in r.commands] == runs
    assert r.text == left
    assert r.errors == ()


def test_protected_spans_are_sorted_and_disjoint() -> None:
    text = "a `x` <!-- c --> <div>d <b>e</b></div>\n```\nf\n```\n<i>"
    spans = protected_spans(text)
    assert [text[s:e] for s, e in spans] == [
        "`x`",
        "<!-- c -->",
        "<div>d <b>e</b></div>",
        "```\nf\n```",
        "<i>",
    ]


def test_protected_spans_stay_linear_on_hostile_input() -> None:
    hostile = [
        "".join("`" * k + " " for k in range(1, 1400)),  # ~1 MB of unmatched runs, each a new length
        "<a " * 200_000,
        '<a "x<' * 100_000,
        "<div>" * 100_000 + "</div>" * 100_000,
        "<p>" * 100_000 + "</div>" * 100_000,
        "```\n~~~\n" * 100_000,
        "<!-" * 200_000,
    ]
    for text in hostile:
        t0 = time.perf_counter()
        scan(text + " !/hello", P)
        assert time.perf_counter() - t0 < 5.0, text[:20]


inner_values = st.text(st.sampled_from(list("abc xyz,()=!/é\n")), max_size=10)
inner_specs = st.tuples(
    names, st.dictionaries(keys, inner_values, max_size=2), st.lists(inner_values, max_size=2)
)
# Wrappers that quote `inner` (which holds no backtick, "<", "'" or "~"): the quoted text as a whole.
WRAPPERS = [
    lambda inner: f"```\n{inner}\n```",
    lambda inner: f"~~~ text\n{inner}\n~~~",
    lambda inner: f"`{inner}`",
    lambda inner: f"`` {inner} ``",
    lambda inner: f"<!-- {inner} -->",
    lambda inner: f"<span title='{inner}'>",
    lambda inner: f"<div hidden>{inner}</div>",
    lambda inner: f"<pre><code>{inner}</code></pre>",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    plain=st.lists(st.tuples(plain_noise, plain_specs, plain_noise), min_size=1, max_size=4),
    quoted=st.lists(
        st.tuples(st.sampled_from(range(len(WRAPPERS))), st.lists(inner_specs, min_size=1, max_size=3)),
        min_size=1,
        max_size=4,
    ),
)
def test_quoted_commands_never_run_and_plain_text_is_handled_as_before(
    plain: list[tuple[str, tuple[str, dict[str, str], list[str]], str]],
    quoted: list[tuple[int, list[tuple[str, dict[str, str], list[str]]]]],
) -> None:
    lines = [" ".join((a, format_command(*spec, prefix=P), b)).replace("\n", " ") for a, spec, b in plain]
    assume(all("-->" not in line for line in lines))
    blocks = [WRAPPERS[w](" ".join(format_command(*s, prefix=P) for s in specs)) for w, specs in quoted]
    assume(all(not b.startswith("<!--") or "-->" not in b[4:-3] for b in blocks))
    # Interleave plain lines and quoted blocks, each on lines of its own.
    pieces = [x for pair in zip(lines, blocks, strict=False) for x in pair]
    pieces += lines[len(blocks) :] + blocks[len(lines) :]
    text = "\n".join(pieces)

    r = scan(text, P)

    expected = [c for line in lines for c in scan(line, P).commands]
    assert [(c.name, c.args, c.positional) for c in r.commands] == [
        (c.name, c.args, c.positional) for c in expected
    ]
    assert len(r.errors) == sum(len(scan(line, P).errors) for line in lines)
    for block in blocks:
        assert block in r.text  # untouched, byte for byte
    protected = protected_spans(text)
    for c in r.commands:
        assert not any(s <= c.span[0] < e for s, e in protected)

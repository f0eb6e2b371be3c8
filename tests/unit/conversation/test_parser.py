"""Scanning chat text for in-chat commands (addons/conversation/parser.py, args.py)."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from addons.conversation.format import format_command
from addons.conversation.parser import scan, scan_content
from tests.unit.conversation.support import (
    PREFIXES,
    P,
    check_spans,
    command_specs,
    names,
    noise,
    only,
    plain_noise,
    plain_specs,
)

# --- removal and whitespace tidying -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a !/hello b", "a b"),
        ("!/hello\nfoo", "foo"),
        ("foo\n!/hello", "foo"),
        ("foo\n!/hello\nbar", "foo\nbar"),
        ("foo\r\n!/hello\r\nbar", "foo\r\nbar"),
        ("foo !/hello\nbar", "foo\nbar"),
        ("foo\n!/hello bar", "foo\nbar"),
        ("!/hello", ""),
        ("  !/hello  ", ""),
        ("!/a !/b\t!/c", ""),
        ("!/a\n!/b(x=1)\n", ""),
        ("\n\n!/hello\n\n", ""),  # only commands (and whitespace): nothing left to send
        ("foo\n\n!/hello\n\nbar", "foo\n\n\nbar"),  # blank lines around are the user's own
        ("a!/hello b", "a b"),
        ("a !/hello,b", "a ,b"),
        ("a!/hello.", "a."),
        ("(!/hello)", "()"),
        ("    !/hello indented", "    indented"),
        ("x  !/a  !/b  y", "x  y"),
        ("keep  double  spaces !/a elsewhere", "keep  double  spaces elsewhere"),
        ("no commands here", "no commands here"),
    ],
)
def test_removal_tidies_only_its_own_whitespace(text: str, expected: str) -> None:
    r = scan(text, P)
    assert r.text == expected
    assert not r.errors
    check_spans(text, r)


def test_text_without_prefix_is_returned_as_is() -> None:
    text = "plain text with ! and / but no command " * 100
    r = scan(text, P)
    assert r.text is text
    assert r.commands == () and r.errors == ()


# --- grammar --------------------------------------------------------------------------------------


def test_bare_command() -> None:
    c = only(scan("please !/Hello now", P))
    assert (c.name, c.args, c.positional, c.raw) == ("hello", {}, (), "!/Hello")
    assert c.span == (7, 14)


def test_keyword_args_are_trimmed_and_lower_cased_in_order() -> None:
    c = only(scan("!/set( Model = openrouter:openai/gpt-4o ,temperature=0.5 , X-Y_z=AbC )", P))
    assert c.name == "set"
    assert list(c.args.items()) == [
        ("model", "openrouter:openai/gpt-4o"),
        ("temperature", "0.5"),
        ("x-y_z", "AbC"),
    ]
    assert c.positional == ()


def test_positional_args() -> None:
    c = only(scan("!/unset(model, project)", P))
    assert c.positional == ("model", "project")
    assert c.args == {}


def test_mixed_args_keep_their_own_order() -> None:
    text = "!/route-append(name=r1,gemini:gemini-2.5-flash,openrouter:openai/gpt-4o)"
    c = only(scan(text, P))
    assert c.name == "route-append"
    assert c.args == {"name": "r1"}
    assert c.positional == ("gemini:gemini-2.5-flash", "openrouter:openai/gpt-4o")
    assert c.raw == text


def test_names_with_digits_dashes_underscores() -> None:
    r = scan("!/create-failover-route(name=x) !/list-failover-routes !/v2_thing", P)
    assert [c.name for c in r.commands] == ["create-failover-route", "list-failover-routes", "v2_thing"]


def test_empty_parentheses() -> None:
    r = scan("!/help() and !/help(  )", P)
    assert [(c.args, c.positional) for c in r.commands] == [({}, ()), ({}, ())]
    assert r.text == "and"


def test_unquoted_value_may_contain_equals_after_key_and_inner_spaces() -> None:
    c = only(scan("!/set(url=https://x.test/?a=b&c=d, system=You are terse.)", P))
    assert c.args == {"url": "https://x.test/?a=b&c=d", "system": "You are terse."}


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ('"a, b"', "a, b"),
        ("'a, b'", "a, b"),
        ('"f(x) = (y)"', "f(x) = (y)"),
        (r'"say \"hi\""', 'say "hi"'),
        (r"'it\'s'", "it's"),
        ('"it\'s"', "it's"),
        (r'"C:\path\to"', r"C:\path\to"),  # unknown escapes keep their backslash
        (r'"back\\slash"', "back\\slash"),
        ('"  padded  "', "  padded  "),
        ('""', ""),
        ('"line1\nline2"', "line1\nline2"),
        ('"!/hello inside"', "!/hello inside"),
        ('"ünïcödé 🎉, 日本語"', "ünïcödé 🎉, 日本語"),
    ],
)
def test_quoted_values(source: str, value: str) -> None:
    text = f"before !/set(k = {source}, {source}) after"
    c = only(scan(text, P))
    assert c.args == {"k": value}
    assert c.positional == (value,)
    assert c.raw == f"!/set(k = {source}, {source})"


def test_unicode_text_and_values() -> None:
    r = scan("héllo 🎉 !/set(name=naïve-日本) wörld", P)
    assert only(r).args == {"name": "naïve-日本"}
    assert r.text == "héllo 🎉 wörld"


def test_name_must_not_run_into_more_word_characters() -> None:
    r = scan("!/héllo and !/hello", P)
    assert [c.raw for c in r.commands] == ["!/hello"]
    assert r.text == "!/héllo and"


def test_prefix_without_a_name_is_plain_text() -> None:
    for text in ["!/", "!/ hello", "a !/(x) b", "!/1abc", "!/-x"]:
        r = scan(text, P)
        assert (r.text, r.commands, r.errors) == (text, (), ())


def test_multiple_commands_in_one_text() -> None:
    text = "first !/set(model=a) then !/unset(project)\n!/hello\nlast !/help"
    r = scan(text, P)
    assert [(c.name, c.args, c.positional) for c in r.commands] == [
        ("set", {"model": "a"}, ()),
        ("unset", {}, ("project",)),
        ("hello", {}, ()),
        ("help", {}, ()),
    ]
    assert r.text == "first then\nlast"
    check_spans(text, r)


def test_commands_adjacent_to_text() -> None:
    r = scan("abc!/hello(x=1)def", P)
    assert only(r).args == {"x": "1"}
    assert r.text == "abcdef"


def test_prefix_inside_quoted_argument_is_not_a_second_command() -> None:
    r = scan('!/set(system="use !/help for help") go', P)
    assert only(r).args == {"system": "use !/help for help"}
    assert r.text == "go"


@pytest.mark.parametrize("prefix", ["$$", ".*", "(", "\\", "^+?", "[x]", "|", "/cmd:"])
def test_prefix_is_literal_even_with_regex_metacharacters(prefix: str) -> None:
    text = f"pay 5{prefix[:1]} then {prefix}set(model=x) and zz{prefix}hello done"
    r = scan(text, prefix)
    assert [c.name for c in r.commands] == ["set", "hello"]
    assert r.text == f"pay 5{prefix[:1]} then and zz done"
    # The regex reading of the prefix must not match anything else.
    assert scan("ab.xset cd", ".*").commands == ()
    assert scan("aaset", "^+?").commands == ()


def test_overlapping_prefix_occurrences() -> None:
    r = scan("cost $$$hello", "$$")
    assert only(r).raw == "$$hello"
    assert r.text == "cost $"


def test_prefix_made_of_word_characters() -> None:
    # A failed candidate ("xé" + "x", stopped by "é") must not hide one that starts inside it.
    assert only(scan("xéxéab", "xé")).raw == "xéab"
    r = scan("cmd:set(a=1) and cmd:hello, but xcmd:helloé", "cmd:")
    assert [c.name for c in r.commands] == ["set", "hello"]
    assert r.text == "and , but xcmd:helloé"
    long_word = "a" * 200_000 + "é"
    assert scan(long_word, "a").text is long_word


def test_empty_prefix_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        scan("text", "")


# --- known / unknown ------------------------------------------------------------------------------

KNOWN = {"set", "unset", "hello", "help"}.__contains__


def test_unknown_names_stay_in_text_untouched() -> None:
    text = "see !/frobnicate(a=1, b) and !/Hello there"
    r = scan(text, P, known=KNOWN)
    assert [c.name for c in r.commands] == ["hello"]
    assert r.text == "see !/frobnicate(a=1, b) and there"
    assert r.errors == ()


def test_strip_unknown_removes_and_reports_them() -> None:
    r = scan("see !/frobnicate(a=1, b) and !/Hello there", P, known=KNOWN, strip_unknown=True)
    assert [(c.name, c.args, c.positional) for c in r.commands] == [
        ("frobnicate", {"a": "1"}, ("b",)),
        ("hello", {}, ()),
    ]
    assert r.text == "see and there"


def test_known_receives_lower_cased_name() -> None:
    seen: list[str] = []

    def known(name: str) -> bool:
        seen.append(name)
        return True

    scan("!/SeT(a=1) !/HELP", P, known=known)
    assert seen == ["set", "help"]


# --- malformed commands ---------------------------------------------------------------------------


def test_unclosed_parenthesis_is_reported_and_known_command_removed() -> None:
    text = "hi !/set(model=x please\nnext line"
    r = scan(text, P, known=KNOWN)
    assert r.commands == ()
    (err,) = r.errors
    assert err.name == "set"
    assert "unclosed '('" in err.message and "!/set(model=x" in err.message
    assert err.raw == "!/set(model=x please"  # never more than the rest of its line
    assert r.text == "hi\nnext line"
    check_spans(text, r)


def test_unclosed_parenthesis_of_unknown_command_is_reported_but_left() -> None:
    text = "look: !/regex(a|b then !/hello"
    r = scan(text, P, known=KNOWN)
    (err,) = r.errors
    assert err.name == "regex"
    assert err.raw == "!/regex(a|b then"  # stops before the next command
    assert [c.name for c in r.commands] == ["hello"]
    assert r.text == "look: !/regex(a|b then"


def test_broken_command_does_not_swallow_the_next_one() -> None:
    r = scan("!/set(model=x !/hello world", P)
    assert [c.name for c in r.commands] == ["hello"]
    assert [e.raw for e in r.errors] == ["!/set(model=x"]
    assert r.text == "world"


@pytest.mark.parametrize(
    ("text", "problem", "raw", "left"),
    [
        ("!/set(a=1", "unclosed '('", "!/set(a=1", ""),
        ("!/set(", "unclosed '('", "!/set(", ""),
        ('!/set(a="x, y)\nrest', 'unclosed " quote', '!/set(a="x, y)', "rest"),
        ("!/set(a='x) ok", "unclosed ' quote", "!/set(a='x) ok", ""),
        ('!/set(a="x"y) ok', "unexpected 'y' after quoted value", '!/set(a="x"y)', "ok"),
        ("!/set(a=f(x)) ok", "'(' in an unquoted value", "!/set(a=f(x))", "ok"),
        ("!/set(a=f((x))) ok", "'(' in an unquoted value", "!/set(a=f((x)))", "ok"),
        ("!/set(a,,b) ok", "empty argument", "!/set(a,,b)", "ok"),
        ("!/set(a,) ok", "empty argument", "!/set(a,)", "ok"),
        ("!/set(,a) ok", "empty argument", "!/set(,a)", "ok"),
        ("!/set(a=) ok", "missing value for 'a'", "!/set(a=)", "ok"),
        ("!/set(a=1, A=2) ok", "duplicate argument 'a'", "!/set(a=1, A=2)", "ok"),
        ("!/set(my key=1) ok", "invalid argument name 'my key'", "!/set(my key=1)", "ok"),
        ("!/set(=1) ok", "missing argument name", "!/set(=1)", "ok"),
        ("!/set(a=1\n, b=2) ok", "unclosed '('", "!/set(a=1", ", b=2) ok"),
    ],
)
def test_malformed_argument_lists(text: str, problem: str, raw: str, left: str) -> None:
    r = scan(text, P, known=KNOWN)
    assert r.commands == ()
    (err,) = r.errors
    assert problem in err.message
    assert "character" in err.message  # says where
    assert err.raw == raw
    assert err.name == "set"
    check_spans(text, r)
    assert r.text == left


def test_error_position_points_into_the_command() -> None:
    (err,) = scan('xx !/set(a="x"y)', P).errors
    # 'y' is the 12th character of '!/set(a="x"y)'.
    assert "at character 12 of the command" in err.message


# --- scan_content ---------------------------------------------------------------------------------


def test_scan_content_string_and_none() -> None:
    assert scan_content("a !/hello b", P)[0] == "a b"
    assert scan_content(None, P) == (None, (), ())


def test_scan_content_parts_keeps_non_text_parts_in_order_and_does_not_mutate() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    audio = {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}
    content: list[Any] = [
        {"type": "text", "text": "!/set(model=x)"},
        image,
        {"type": "text", "text": "describe !/hello this", "cache_control": {"type": "ephemeral"}},
        audio,
        {"type": "text", "text": "untouched"},
        {"type": "text", "text": ""},
        {"type": "file", "file": {"file_id": "f1"}},
    ]
    before = copy.deepcopy(content)
    new, commands, errors = scan_content(content, P, known=KNOWN)
    assert content == before
    assert isinstance(new, list)
    assert [c.name for c in commands] == ["set", "hello"]
    assert errors == ()
    assert new == [
        image,
        {"type": "text", "text": "describe this", "cache_control": {"type": "ephemeral"}},
        audio,
        {"type": "text", "text": "untouched"},
        {"type": "text", "text": ""},  # was empty already: not ours to drop
        {"type": "file", "file": {"file_id": "f1"}},
    ]
    assert new[0] is image and new[2] is audio
    assert new[3] is content[4]


def test_scan_content_all_command_parts_give_empty_list() -> None:
    new, commands, _ = scan_content([{"type": "text", "text": "!/hello"}], P)
    assert new == [] and len(commands) == 1


def test_scan_content_reports_errors_and_passes_options() -> None:
    content = [{"type": "text", "text": "!/nope(x !/set(a=1)"}]
    new, commands, errors = scan_content(content, P, known=KNOWN)
    assert [c.name for c in commands] == ["set"]
    assert [e.name for e in errors] == ["nope"]
    assert new == [{"type": "text", "text": "!/nope(x"}]


def test_scan_content_odd_parts_are_kept() -> None:
    content: list[Any] = ["bare string", {"type": "text", "text": None}, {"no": "type"}, 7]
    new, commands, errors = scan_content(content, P)
    assert new == content and commands == () and errors == ()


# --- properties -----------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(text=noise, prefix=PREFIXES, strip_unknown=st.booleans(), known_names=st.sets(names, max_size=3))
def test_never_raises_on_arbitrary_text(
    text: str, prefix: str, strip_unknown: bool, known_names: set[str]
) -> None:
    for known in (None, known_names.__contains__):
        r = scan(text, prefix, known=known, strip_unknown=strip_unknown)
        check_spans(text, r)
        assert len(r.text) <= len(text)


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(
        st.one_of(noise, command_specs.map(lambda s: format_command(*s, prefix="!/"))),
        max_size=8,
    ),
    glue=st.sampled_from(["", " ", "(", ")", "\n", '"', ","]),
)
def test_never_raises_on_commands_glued_to_junk(parts: list[str], glue: str) -> None:
    text = glue.join(parts)
    r = scan(text, "!/")
    check_spans(text, r)
    assert len(r.text) <= len(text)


def non_ws(s: str) -> str:
    return "".join(s.split())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    prefix=PREFIXES,
    segments=st.lists(plain_noise, min_size=1, max_size=6),
    specs=st.lists(plain_specs, max_size=5),
)
def test_non_command_text_is_never_lost_and_commands_parse_back(
    prefix: str, segments: list[str], specs: list[tuple[str, dict[str, str], list[str]]]
) -> None:
    assume(all(prefix not in s for s in segments))
    rendered = [format_command(n, a, p, prefix) for n, a, p in specs]
    pieces: list[str] = []
    for i, seg in enumerate(segments):
        pieces.append(seg)
        if i < len(rendered):
            pieces.append(rendered[i])
    pieces.extend(rendered[len(segments) :])
    text = " ".join(pieces)
    assume(prefix not in " ".join(segments))  # segments joined by spaces must not form the prefix

    r = scan(text, prefix)

    assert r.errors == ()
    assert [(c.name, c.args, c.positional) for c in r.commands] == [(n, a, tuple(p)) for n, a, p in specs]
    check_spans(text, r)
    # Only commands and whitespace next to them go: every other character survives, in order.
    assert non_ws(r.text) == non_ws("".join(segments))
    cursor = 0
    for seg in segments:
        core = seg.strip()
        if core:
            found = r.text.find(core, cursor)
            assert found >= 0, (core, r.text)
            cursor = found + len(core)


# --- size / speed sanity (generous bounds: they catch blow-ups, not slowness) -------------------


def test_large_texts_scan_without_blowup() -> None:
    base = "The quick brown fox! jumps/over (the) lazy dog, 'quoted' \"text\".\n"
    clean = (base * (1_000_000 // len(base)))[:1_000_000]
    with_commands = clean[:300_000] + " !/set(model=x, 'a, b') " + clean[300_000:] + "\n!/hello"
    adversarial = [
        "!/a(" * 25_000,
        "!/a(\n" * 20_000,
        '!/a("\n' * 20_000,
        "!/a(x=1,x=2 " * 10_000,
        "!/a(" + "(" * 300_000,
        "!/" + "a" * 300_000 + "é",
        "$" * 300_000,
        '!/a("' + '\\"' * 100_000 + '")',
    ]
    t0 = time.perf_counter()
    assert scan(clean, P).text is clean
    r = scan(with_commands, P)
    assert [c.name for c in r.commands] == ["set", "hello"]
    assert time.perf_counter() - t0 < 1.0  # really ~2 ms
    for text in adversarial:
        t0 = time.perf_counter()
        scan(text, "$$" if text.startswith("$") else P)
        assert time.perf_counter() - t0 < 5.0, text[:20]

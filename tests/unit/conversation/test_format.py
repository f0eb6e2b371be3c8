"""Rendering commands back to text (addons/conversation/format.py): scan() reads them back unchanged."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from addons.conversation.format import format_command
from addons.conversation.parser import scan
from tests.unit.conversation.support import PREFIXES, P, command_specs, only


@pytest.mark.parametrize(
    ("args", "positional", "rendered"),
    [
        ({}, [], "!/help"),
        ({"model": "openai/gpt-4o"}, [], "!/help(model=openai/gpt-4o)"),
        ({"name": "r1"}, ["gemini:gemini-2.5-flash"], "!/help(name=r1, gemini:gemini-2.5-flash)"),
        ({"s": "a, b"}, ["x=y", ""], '!/help(s="a, b", "x=y", "")'),
        ({"s": 'say "hi" (x)'}, [], '!/help(s="say \\"hi\\" (x)")'),
        ({"s": '"hi" \\o/'}, [], r'!/help(s="\"hi\" \\o/")'),
        ({"s": "it's"}, [], "!/help(s=it's)"),
    ],
)
def test_format_command_examples(args: dict[str, str], positional: list[str], rendered: str) -> None:
    assert format_command("help", args, positional, P) == rendered
    c = only(scan(rendered, P))
    assert (c.args, c.positional) == (args, tuple(positional))


@pytest.mark.parametrize(
    ("name", "args"),
    [("", {}), ("1x", {}), ("a b", {}), ("é", {}), ("ok", {"bad key": "v"}), ("ok", {"K": "1", "k": "2"})],
)
def test_format_command_rejects_what_the_grammar_cannot_express(name: str, args: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        format_command(name, args, [], P)


@settings(max_examples=300, deadline=None)
@given(spec=command_specs, prefix=PREFIXES)
def test_format_command_round_trips(spec: tuple[str, dict[str, str], list[str]], prefix: str) -> None:
    name, args, positional = spec
    rendered = format_command(name, args, positional, prefix)
    c = only(scan(rendered, prefix))
    assert (c.name, c.args, c.positional, c.raw) == (name, args, tuple(positional), rendered)
    assert c.span == (0, len(rendered))
    assert scan(rendered, prefix).text == ""

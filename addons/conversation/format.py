"""Commands rendered as text: the inverse of scanning (parser.py), quoting values as the grammar needs."""

from __future__ import annotations

import re
from collections.abc import Sequence

from addons.conversation.args import WS
from addons.conversation.parser import DEFAULT_PREFIX

_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _needs_quotes(value: str, positional: bool) -> bool:
    return (
        not value
        or value != value.strip(WS)
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

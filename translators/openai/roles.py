"""`role` on the first chunk of each choice only, as OpenAI streams it.

OpenRouter repeats `"role":"assistant"` in every chunk; the openai SDK's stream helper concatenates
string deltas, builds the role "assistantassistant..." and the next request built from it is refused.

Cheap on the hot path: a chunk without `"role"` is one bytes search; a chunk whose every `"role"` key
sits where OpenRouter (and OpenAI) put it, first in a choice's delta right after `index`, is fixed on its
bytes (OpenRouter's usual chunk by a plain replace, under a microsecond). Only another line carrying
`"role"` is parsed and rewritten. Every way gives each line the bytes it would get alone, so the output
does not depend on where the stream was split.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from translators import json_codec

_ROLE = b'"role"'
# `{"index":N,"delta":{` then the role member and its comma, whitespace allowed as JSON allows it. Inside
# a JSON string every quote is escaped, so this matches object keys only, never text.
_SHAPE = re.compile(rb'(\{\s*"index"\s*:\s*(\d+)\s*,\s*"delta"\s*:\s*\{\s*)"role"\s*:\s*"assistant"\s*,?')
# What the expression does to OpenRouter's usual chunk once choice 0 has its role, as a plain replace.
_USUAL, _USUAL_FIXED = b'{"index":0,"delta":{"role":"assistant",', b'{"index":0,"delta":{'


class RoleOnce:
    """Feed whole SSE events (any number per call, in order); `role` stays on the first delta of each
    choice index and is removed from later ones. `seen` primes indexes whose role went out already."""

    __slots__ = ("_seen",)

    def __init__(self, seen: Iterable[int] = ()) -> None:
        self._seen = set(seen)

    def feed(self, events: bytes) -> bytes:
        roles = events.count(_ROLE)
        if not roles:
            return events
        if 0 in self._seen and events.count(_USUAL) == roles:
            return events.replace(_USUAL, _USUAL_FIXED)
        # Each match holds one `"role"`, so equal totals mean every line is in the known shape.
        if len(_SHAPE.findall(events)) == roles:
            return _SHAPE.sub(self._keep_first, events)
        return b"\n".join(self._line(line) if _ROLE in line else line for line in events.split(b"\n"))

    def _keep_first(self, m: re.Match[bytes]) -> bytes:
        index = int(m.group(2))
        if index in self._seen:
            return m.group(1)
        self._seen.add(index)
        return m.group(0)

    def _line(self, line: bytes) -> bytes:
        if len(_SHAPE.findall(line)) == line.count(_ROLE):
            return _SHAPE.sub(self._keep_first, line)
        if not line.startswith(b"data:"):
            return line
        body = line[5:].strip()
        try:
            obj = json_codec.loads(body)
        except (json_codec.JSONDecodeError, UnicodeDecodeError):
            return line  # a data line that is not JSON on its own: left as it came
        if not self._drop_repeats(obj):
            return line
        return b"data: " + json_codec.dumps(obj) + (b"\r" if line.endswith(b"\r") else b"")

    def _drop_repeats(self, obj: Any) -> bool:
        """Removes repeated roles from a parsed chunk; True when it changed anything."""
        choices = obj.get("choices") if isinstance(obj, dict) else None
        changed = False
        for pos, choice in enumerate(choices if isinstance(choices, list) else []):
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict) or "role" not in delta:
                continue
            index = choice["index"] if isinstance(choice.get("index"), int) else pos
            if index in self._seen:
                del delta["role"]
                changed = True
            else:
                self._seen.add(index)
        return changed

"""Which path a request is for: the one form every server reads the same way. The proxy routes on the
canonical path and forwards (reverse mode) only paths already in it, so no escape or dot segment can make
a check here and a server behind it disagree."""

from __future__ import annotations

import functools
import re
import string
from urllib.parse import unquote

from addons.security.refusal import Refusal

_ESCAPE = re.compile(r"%([0-9a-fA-F]{2})")
# Escaped characters that hide a separator, a dot, a parameter or an escape, or that need no escaping at all:
# the forms a path check is dodged with. A canonical path escapes none of them.
_SNEAKY = frozenset(string.ascii_letters + string.digits + "-._~/\\;%") | {chr(c) for c in (*range(32), 127)}


@functools.lru_cache(maxsize=256)  # asked several times per request, of a handful of paths
def canonical_path(path: str) -> str:
    """The path a server could take `path` for: decoded once, backslashes as slashes, `;params` dropped,
    empty and dot segments resolved; case kept (routing compares case-insensitively). No query."""
    raw = path.split("?", 1)[0]
    decoded = unquote(raw, errors="replace").replace("\\", "/")
    out: list[str] = []
    for segment in decoded.split("/"):
        segment = segment.split(";", 1)[0]
        if segment in ("", "."):
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    trailing = "/" if decoded.endswith("/") and out else ""
    return "/" + "/".join(out) + trailing


def is_canonical(path: str) -> bool:
    """Nothing a server might read differently from us: no escaped separators, dots or plain characters,
    no dot or empty segments, `;params` or backslashes."""
    raw = path.split("?", 1)[0]
    if not raw.startswith("/") or any(chr(int(h, 16)) in _SNEAKY for h in _ESCAPE.findall(raw)):
        return False
    return canonical_path(raw) == unquote(raw, errors="replace")


def non_canonical(path: str) -> Refusal:
    return Refusal(
        400,
        f"The path {path.split('?', 1)[0][:200]!r} is not in canonical form (escaped separators or dots, "
        "'//', '/./', '/../', ';' parameters or backslashes); send it plainly.",
        "non_canonical_path",
    )


def not_served(served: str, stand_in: str | None = None) -> Refusal:
    """`stand_in`: an intercepted provider host (explicit-proxy mode), which is never contacted."""
    elsewhere = (
        f"requests to {stand_in} are answered by the proxy and never forwarded"
        if stand_in
        else "other paths are not forwarded unless the proxy runs with --reverse-target URL "
        "(LLM_REVERSE_PASSTHROUGH=true)"
    )
    return Refusal(404, f"This proxy serves {served}; {elsewhere}.", "path_not_served")

"""Thinking-block signatures we hand out: a marked wrapper around the backend's own thought signature.

Claude clients send each thinking block's `signature` back verbatim on the next turn. Ours are
`llmi1.` + the raw backend signature (a Gemini thoughtSignature), so a signature someone else minted (a
real Anthropic one, from a conversation that began elsewhere) is recognised and dropped instead of being
sent to a backend that would reject the whole turn over it.
"""

from __future__ import annotations

from typing import Any

PREFIX = "llmi1."


def encode_signature(sig: str) -> str:
    return PREFIX + sig


def decode_signature(s: Any) -> str | None:
    """The backend signature inside one of ours; None for anything else (foreign, empty, not a string)."""
    if isinstance(s, str) and s.startswith(PREFIX) and len(s) > len(PREFIX):
        return s[len(PREFIX) :]
    return None

"""Gemini 3 thought signatures, carried through OpenAI clients inside the tool call ids we hand out.

Gemini 3 answers tool calls with an opaque `thoughtSignature` and rejects the next turn unless it comes
back on the same functionCall part. OpenAI clients know nothing of it, so it rides inside the tool call
id (`<id>__ts__<urlsafe base64>`) and is restored when that id comes back. Signatures on other parts
(text, thoughts) travel as the answer's `reasoning_signature` and come back on the assistant message.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

log = logging.getLogger(__name__)

SIGNATURE_SEPARATOR = "__ts__"
# Google's documented placeholder for history Gemini did not produce itself (another provider's turns,
# hand-built transcripts): Gemini 3 otherwise answers 400 "Function call is missing a thought_signature".
DUMMY_THOUGHT_SIGNATURE = "skip_thought_signature_validator"


def encode_tool_call_id(base: str, signature: str | None) -> str:
    """`base` plus the signature, urlsafe so the id survives clients that put ids in URLs or logs."""
    if not signature:
        return base
    enc = base64.urlsafe_b64encode(signature.encode("utf-8")).decode("ascii").rstrip("=")
    return f"{base}{SIGNATURE_SEPARATOR}{enc}"


def decode_tool_call_id(call_id: str) -> tuple[str, str | None]:
    """(base id, thought signature or None). A mangled suffix is ignored rather than failing the turn."""
    base, sep, enc = call_id.partition(SIGNATURE_SEPARATOR)
    if not sep or not enc:
        return call_id, None
    try:
        raw = base64.b64decode(enc + "=" * (-len(enc) % 4), altchars=b"-_", validate=True)
        if not raw:
            raise ValueError("empty signature")
        return base, raw.decode("utf-8")
    except (binascii.Error, ValueError):
        log.debug("tool call id %r has an undecodable thought signature suffix; sending none", base)
        return base, None


def add_dummy_signatures(turns: list[dict[str, Any]]) -> None:
    """Gemini 3 validates the first functionCall of each model turn; history from elsewhere has none."""
    for turn in turns:
        if turn["role"] != "model":
            continue
        calls = [p for p in turn["parts"] if "functionCall" in p]
        if calls and not calls[0].get("thoughtSignature"):
            calls[0]["thoughtSignature"] = DUMMY_THOUGHT_SIGNATURE


def attach_signature(parts: list[dict[str, Any]], signature: str) -> None:
    """A turn's signature handed back outside the tool call ids (`reasoning_signature`): onto the first
    functionCall still without one, else the last part without one. One already there is never replaced."""
    unsigned = [p for p in parts if not p.get("thoughtSignature")]
    target = next((p for p in unsigned if "functionCall" in p), unsigned[-1] if unsigned else None)
    if target is None:
        log.debug("dropping a reasoning signature: every part of the turn already carries one")
        return
    target["thoughtSignature"] = signature

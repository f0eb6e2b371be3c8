"""Gemini 3 thought signatures and Gemini's own functionCall ids, kept apart from the ids we hand out.

Gemini 3 answers tool calls with an opaque `thoughtSignature` and rejects the next turn unless it comes
back on the same functionCall part; newer models also give each call an `id` the functionCall and its
functionResponse should carry back (https://ai.google.dev/api/caching#FunctionCall). OpenAI clients know
nothing of either, and OpenAI-compatible providers refuse tool call ids over 64 characters, so the client
gets a short id of ours (`call_` + 24 hex digits) and the rest is a `SavedCall` the pipeline keeps in its
signature store under that id: the answer translators report what to keep, and the request side gets what
the store holds for the request's ids (`with_saved_calls`). When the store has nothing (another proxy
instance, evicted, expired), Gemini 3 gets Google's documented placeholder, as for history from another
provider, and no id. Ids of the previous version (`<id>__ts__<urlsafe base64>`) still decode.
Signatures on other parts (text, thoughts) travel as the answer's `reasoning_signature` and come back on
the assistant message.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from translators import json_codec

log = logging.getLogger(__name__)

SIGNATURE_SEPARATOR = "__ts__"
# Google's documented placeholder for history Gemini did not produce itself (another provider's turns,
# hand-built transcripts): Gemini 3 otherwise answers 400 "Function call is missing a thought_signature".
DUMMY_THOUGHT_SIGNATURE = "skip_thought_signature_validator"
# Where `with_saved_calls` puts a stored call on the translator's own copy of an assistant tool call.
SAVED_KEY = "saved_call"


@dataclass(frozen=True, slots=True)
class SavedCall:
    """What a tool call id we handed out stands for on Gemini's side."""

    signature: str | None = None
    native_id: str | None = None  # Gemini's own functionCall.id

    def pack(self) -> str:
        return json_codec.dumps({"v": 1, "sig": self.signature, "id": self.native_id}).decode("utf-8")

    @staticmethod
    def unpack(value: Any) -> SavedCall | None:
        """None for anything this version did not pack (another backend's value, a corrupt entry)."""
        try:
            obj = json_codec.loads(value) if isinstance(value, str) else None
        except json_codec.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict) or obj.get("v") != 1:
            log.debug("ignoring a stored tool call entry this version did not write")
            return None
        sig, native = obj.get("sig"), obj.get("id")
        return SavedCall(_text(sig), _text(native))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def with_saved_calls(request: dict[str, Any], saved: Mapping[str, str]) -> dict[str, Any]:
    """The request with each assistant tool call the store knows carrying its `SavedCall` under SAVED_KEY
    (copies: the caller's request stays as it is; without a hit it is returned as is)."""
    messages = request.get("messages")
    if not saved or not isinstance(messages, list):
        return request
    out = list(messages)
    for i, msg in enumerate(messages):
        calls = msg.get("tool_calls") if isinstance(msg, dict) and msg.get("role") == "assistant" else None
        if not isinstance(calls, list):
            continue
        found = [_restored(c, saved) for c in calls]
        if any(f is not c for f, c in zip(found, calls, strict=True)):
            out[i] = {**msg, "tool_calls": found}
    return {**request, "messages": out}


def _restored(call: Any, saved: Mapping[str, str]) -> Any:
    call_id = call.get("id") if isinstance(call, dict) else None
    entry = SavedCall.unpack(saved[call_id]) if isinstance(call_id, str) and call_id in saved else None
    return call if entry is None else {**call, SAVED_KEY: entry}


def saved_call(call: dict[str, Any]) -> SavedCall:
    """What an assistant tool call brings back: the store's entry, else a signature inside an id of the
    previous version, else nothing."""
    entry = call.get(SAVED_KEY)
    if isinstance(entry, SavedCall):
        return entry
    call_id = call.get("id")
    return SavedCall(decode_tool_call_id(call_id)[1]) if isinstance(call_id, str) else SavedCall()


def encode_tool_call_id(base: str, signature: str | None) -> str:
    """The previous version's id form, `base` plus the signature, urlsafe; clients may still hold them."""
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

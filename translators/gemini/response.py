"""Gemini GenerateContentResponse -> OpenAI chat.completion, plus the candidate reading streams share."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from translators.gemini.exceptions import GeminiFormatError
from translators.gemini.signatures import SavedCall
from translators.openai.synthetic import completion_id

log = logging.getLogger(__name__)

IdFactory = Callable[[str], str]
"""Makes a fresh id from a prefix ("chatcmpl-" or "call_"); injectable so tests are deterministic."""
Kept = dict[str, str]
"""What an answer's tool calls leave for the signature store: packed `SavedCall`s by the id the client
gets. The caller passes the dict and stores what the translators add to it; None keeps nothing."""


def random_id(prefix: str) -> str:
    return completion_id() if prefix == "chatcmpl-" else prefix + uuid.uuid4().hex[:24]


_FILTER_REASONS = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE", "OTHER", "NO_IMAGE"}
)
_STOP_REASONS = frozenset(
    {
        "STOP", "FINISH_REASON_UNSPECIFIED", "MALFORMED_FUNCTION_CALL", "TOO_MANY_TOOL_CALLS",
        "UNEXPECTED_TOOL_CALL", "MISSING_THOUGHT_SIGNATURE", "MALFORMED_RESPONSE",
    }
)  # fmt: skip


def finish_reason(raw: Any) -> str:
    """Gemini finishReason -> OpenAI finish_reason ("tool_calls" is the caller's decision)."""
    if raw == "MAX_TOKENS":
        return "length"
    if raw in _FILTER_REASONS or (isinstance(raw, str) and raw.startswith("IMAGE_")):
        return "content_filter"
    if raw not in _STOP_REASONS:
        log.debug("unknown Gemini finishReason %r mapped to 'stop'", raw)
    return "stop"


@dataclass(slots=True)
class CandidateParts:
    texts: list[str]
    thoughts: list[str]
    calls: list[dict[str, Any]]  # OpenAI tool_call objects (without index)
    signatures: list[str]  # thoughtSignatures of the other parts, in order (`reasoning_signature`)


def read_candidate(cand: dict[str, Any], ids: IdFactory, kept: Kept | None) -> CandidateParts:
    """A candidate's parts sorted into answer text, thoughts, tool calls (their signatures and Gemini's
    own ids go to `kept`) and the signatures of every other part."""
    out = CandidateParts([], [], [], [])
    content = cand.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict):
            continue
        signature = part.get("thoughtSignature")
        signature = signature if isinstance(signature, str) and signature else None
        if isinstance(part.get("functionCall"), dict):
            out.calls.append(_tool_call(part["functionCall"], signature, ids, kept))
            continue
        if signature:
            out.signatures.append(signature)
        if isinstance(part.get("text"), str):
            (out.thoughts if part.get("thought") is True else out.texts).append(part["text"])
        elif not signature:
            log.debug("ignoring Gemini part with keys %s", sorted(part))
    return out


def _tool_call(
    fc: dict[str, Any], signature: str | None, ids: IdFactory, kept: Kept | None
) -> dict[str, Any]:
    """Always an id of ours: Gemini's own may be any length, and the client sees only short ids."""
    native = fc.get("id") if isinstance(fc.get("id"), str) and fc.get("id") else None
    args = fc.get("args") if isinstance(fc.get("args"), dict) else {}
    call_id = ids("call_")
    if kept is not None and (signature or native):
        kept[call_id] = SavedCall(signature, native).pack()
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": str(fc.get("name") or ""), "arguments": json.dumps(args, ensure_ascii=False)},
    }


def usage_from_metadata(meta: Any) -> dict[str, Any]:
    """OpenAI usage from usageMetadata. Thoughts count as completion tokens (billed as output)."""
    meta = meta if isinstance(meta, dict) else {}

    def count(key: str) -> int:
        value = meta.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    prompt, tool_use = count("promptTokenCount"), count("toolUsePromptTokenCount")
    candidates, thoughts = count("candidatesTokenCount"), count("thoughtsTokenCount")
    total = count("totalTokenCount") or prompt + tool_use + candidates + thoughts
    completion = candidates
    # Whether candidatesTokenCount already includes thoughts varies by model; the total tells.
    if thoughts and prompt + candidates + tool_use != total:
        completion += thoughts
    return {
        "prompt_tokens": prompt + tool_use,
        "completion_tokens": completion,
        "total_tokens": total,
        "prompt_tokens_details": {"cached_tokens": count("cachedContentTokenCount")},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }


def from_gemini_response(
    data: dict[str, Any], *, model: str, id_factory: IdFactory | None = None, kept: Kept | None = None
) -> dict[str, Any]:
    """Gemini GenerateContentResponse -> OpenAI chat.completion. Raises GeminiFormatError on other JSON.
    What the tool calls leave for the signature store is added to `kept`."""
    ids = id_factory or random_id
    if not isinstance(data, dict):
        raise GeminiFormatError(f"Gemini answered with {type(data).__name__}, not a GenerateContentResponse")
    if "error" in data:
        raise GeminiFormatError(
            "Gemini answered with an error object; translate it with gemini_error_to_openai"
        )
    cands = data.get("candidates")
    if cands is not None and not isinstance(cands, list):
        raise GeminiFormatError("Gemini's 'candidates' is not an array")
    rid = data.get("responseId")
    choices = [
        _choice(pos, cand, ids, kept)
        for pos, cand in enumerate(c for c in cands or [] if isinstance(c, dict))
    ]
    if not choices:
        blocked = isinstance(data.get("promptFeedback"), dict) and data["promptFeedback"].get("blockReason")
        choices.append(
            {
                "index": 0,
                "message": {"role": "assistant", "content": None if blocked else "", "refusal": None},
                "logprobs": None,
                "finish_reason": "content_filter" if blocked else "stop",
            }
        )
    choices.sort(key=lambda c: c["index"])
    return {
        "id": f"chatcmpl-{rid}" if isinstance(rid, str) and rid else ids("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": choices,
        "usage": usage_from_metadata(data.get("usageMetadata")),
    }


def _choice(pos: int, cand: dict[str, Any], ids: IdFactory, kept: Kept | None) -> dict[str, Any]:
    parts = read_candidate(cand, ids, kept)
    finish = "tool_calls" if parts.calls else finish_reason(cand.get("finishReason"))
    if parts.texts:
        content: str | None = "".join(parts.texts)
    else:
        content = None if parts.calls or finish == "content_filter" else ""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if parts.thoughts:
        message["reasoning_content"] = "".join(parts.thoughts)
    if parts.signatures:
        message["reasoning_signature"] = parts.signatures[0]
    if parts.calls:
        message["tool_calls"] = parts.calls
    index = cand.get("index") if isinstance(cand.get("index"), int) else pos
    choice = {"index": index, "message": message, "logprobs": None, "finish_reason": finish}
    if native := unusual_finish(cand.get("finishReason")):
        choice["native_finish_reason"] = native
    return choice


def unusual_finish(raw: Any) -> str | None:
    """Gemini's own finishReason where OpenAI's word hides it (MALFORMED_FUNCTION_CALL, SAFETY, ...), as
    OpenRouter names it: `native_finish_reason`. The proxy quotes it when an answer came back empty."""
    return (
        raw
        if isinstance(raw, str) and raw not in ("STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED")
        else None
    )

"""OpenAI chat.completions request -> Gemini GenerateContentRequest (the entry point of the request side)."""

from __future__ import annotations

import logging
from typing import Any

from translators.gemini.exceptions import TranslationError
from translators.gemini.generation import dropped_penalties, generation_config
from translators.gemini.messages import convert_messages
from translators.gemini.models import takes_system_instruction
from translators.gemini.tools import function_declarations, tool_config

log = logging.getLogger(__name__)

# Parameters read here and in the modules above; anything else is dropped with a debug line.
_HANDLED = frozenset(
    {
        "messages", "model", "stream", "stream_options", "tools", "tool_choice", "temperature", "top_p",
        "top_k", "max_tokens", "max_completion_tokens", "stop", "n", "seed", "presence_penalty",
        "frequency_penalty", "response_format", "reasoning_effort", "reasoning",
    }
)  # fmt: skip


def to_gemini_request(body: dict[str, Any], *, model: str) -> dict[str, Any]:
    """OpenAI chat.completions request -> Gemini GenerateContentRequest. Raises TranslationError."""
    if not isinstance(body, dict):
        raise TranslationError("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise TranslationError("'messages' must be a non-empty array", param="messages")

    system, contents = convert_messages(messages, model)
    out: dict[str, Any] = {"contents": contents}
    if system and takes_system_instruction(model):
        out["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    elif system:
        _open_with_system_text("\n\n".join(system), contents)

    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise TranslationError("'tools' must be an array", param="tools")
        decls = function_declarations(tools)
        config = tool_config(body.get("tool_choice"), decls)
        if decls:
            out["tools"] = [{"functionDeclarations": decls}]
            if config:
                out["toolConfig"] = {"functionCallingConfig": config}
    elif body.get("tool_choice") is not None:
        log.debug("dropping tool_choice: the request has no tools")

    gen = generation_config(body, model)
    if gen:
        out["generationConfig"] = gen

    for key in body:
        if key not in _HANDLED:
            log.debug("dropping OpenAI parameter %r: Gemini has no equivalent", key)
    return out


def _open_with_system_text(text: str, contents: list[dict[str, Any]]) -> None:
    """Models without a system instruction (Gemma 3 and older: "Developer instruction is not enabled")
    read the system text at the start of the first user turn, as Google's ADK hands it to Gemma 3."""
    if contents[0]["role"] == "user":
        contents[0]["parts"].insert(0, {"text": text})
    else:
        contents.insert(0, {"role": "user", "parts": [{"text": text}]})


def request_notes(body: dict[str, Any], model: str) -> list[str]:
    """What to_gemini_request leaves out or moves for `model` so that Gemini does not refuse the request,
    one line each, for the flow comment. Raises TranslationError where to_gemini_request would."""
    notes = [f"{key} dropped ({model} refuses penalties)" for key in dropped_penalties(body, model)]
    messages = body.get("messages")
    has_system = isinstance(messages, list) and any(
        isinstance(m, dict) and m.get("role") in ("system", "developer") and m.get("content")
        for m in messages
    )
    if has_system and not takes_system_instruction(model):
        notes.append(f"system prompt moved into the first user turn ({model} takes no system instruction)")
    return notes

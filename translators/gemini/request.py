"""OpenAI chat.completions request -> Gemini GenerateContentRequest (the entry point of the request side)."""

from __future__ import annotations

import logging
from typing import Any

from translators.gemini.exceptions import TranslationError
from translators.gemini.generation import generation_config
from translators.gemini.messages import convert_messages
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
    if system:
        out["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}

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

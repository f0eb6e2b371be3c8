"""Interactive mode's prelude (the banner and command confirmations shown before a model's reply): when
it may be shown, the form it takes, and taking it back out of a history a client sends again.

The pipeline puts the prelude in front of the model's text as `prelude + "\\n\\n"` (a whole answer) or
as the stream's first content delta. A prelude never holds a blank line and always ends with MARK, so
an assistant message whose first paragraph ends with MARK carries one, and removing that paragraph and
its blank line gives back exactly what the model said.
"""

from __future__ import annotations

import re
from typing import Any

MARK = "── llm-intercept ──"
_BLANK_LINES = re.compile(r"\n\s*\n")


def mark(text: str) -> str:
    """The prelude as shown: blank lines folded, MARK last ("" when there is nothing to show)."""
    text = _BLANK_LINES.sub("\n", text.strip())
    return f"{text}\n{MARK}" if text else ""


def exact_answer_wanted(request: dict[str, Any]) -> bool:
    """Structured output or a forced tool call: the client parses the answer, and any text of the
    proxy's in it would break that (openai's `parse()`, LangChain's structured output, instructor)."""
    fmt = request.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        return True
    choice = request.get("tool_choice")
    if choice == "required":
        return True
    if isinstance(choice, dict):  # a named function or custom tool, or allowed_tools
        allowed = choice.get("allowed_tools")
        return choice.get("type") != "allowed_tools" or (
            isinstance(allowed, dict) and allowed.get("mode") == "required"
        )
    return isinstance(request.get("function_call"), dict)  # the legacy form of a named function


def without_preludes(request: dict[str, Any]) -> dict[str, Any]:
    """`request` with every prelude taken out of its assistant messages; the same object when it has
    none (the common case costs one substring search per assistant message)."""
    messages = request.get("messages")
    if not isinstance(messages, list):
        return request
    out: list[Any] | None = None
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or msg.get("role") != "assistant":
            continue
        content = msg.get("content")
        stripped = _strip_content(content)
        if stripped is content:
            continue
        if out is None:
            out = list(messages)
        if stripped == "" and msg.get("tool_calls"):
            stripped = None  # the model sent no text with its calls; the prelude made it ""
        out[i] = {**msg, "content": stripped}
    return request if out is None else {**request, "messages": out}


def _strip_content(content: Any) -> Any:
    """`content` without its prelude, or the very same object when it has none."""
    if isinstance(content, str):
        return _strip_text(content)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first = content[0]
        text = first.get("text")
        if first.get("type") != "text" or not isinstance(text, str):
            return content
        stripped = _strip_text(text)
        if stripped is text:
            return content
        rest = content[1:]
        return [{**first, "text": stripped}, *rest] if stripped or not rest else rest
    return content


def _strip_text(text: str) -> str:
    if MARK not in text:
        return text
    # A client that trims the answer may have dropped the blank line after an answer of prelude only.
    head, _, rest = text.partition("\n\n")
    return rest if head.endswith("\n" + MARK) else text

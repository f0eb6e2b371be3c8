"""Shape checks shared by the request translators; each failure is a 400 naming the field's path."""

from __future__ import annotations

from typing import Any

from translators.openai.types import RequestError


def fail(where: str, problem: str) -> RequestError:
    return RequestError(f"{where}: {problem}", param=where)


def text_field(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise fail(f"{where}.{key}", "Field required" if value is None else "Input should be a valid string")
    return value


def block_list(content: Any, where: str) -> list[dict[str, Any]]:
    """A list of blocks, each an object with a string `type`."""
    if not isinstance(content, list):
        raise fail(where, "Input should be a valid string or list of content blocks")
    for i, block in enumerate(content):
        if not isinstance(block, dict):
            raise fail(f"{where}.{i}", "Input should be a valid content block object")
        text_field(block, "type", f"{where}.{i}")
    return content

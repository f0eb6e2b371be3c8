"""Anthropic content blocks that carry material (text, images, documents, search results) -> internal
chat content parts. Turn-level blocks (tool_use, tool_result, thinking) are messages.py's."""

from __future__ import annotations

from typing import Any

from translators.anthropic.checks import block_list, fail, text_field


def to_parts(block: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """One block -> internal parts; an unknown block type is the client's error."""
    kind = block["type"]
    if kind == "text":
        part: dict[str, Any] = {"type": "text", "text": text_field(block, "text", where)}
        if isinstance(block.get("cache_control"), dict):
            part["cache_control"] = block["cache_control"]  # prompt-cache breakpoints ride along
        return [part]
    if kind == "image":
        return [{"type": "image_url", "image_url": {"url": _source_url(block, where)}}]
    if kind == "document":
        return _document(block, where)
    if kind == "search_result":
        return [_text(_search_result(block, where))]
    if kind == "tool_reference":  # the model already has every tool: a note keeps the turn readable
        return [_text(f"Tool loaded: {text_field(block, 'tool_name', where)}")]
    if kind == "compaction":  # a summary of earlier turns; null content marks a failed compaction
        summary = block.get("content")
        return [_text(summary)] if isinstance(summary, str) and summary else []
    raise fail(f"{where}.type", f"unsupported content block type {kind!r}")


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _source(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise fail(f"{where}.source", "Field required")
    text_field(source, "type", f"{where}.source")
    return source


def _source_url(block: dict[str, Any], where: str) -> str:
    """A base64 or url source as the URL an internal image or file part carries."""
    source = _source(block, where)
    at = f"{where}.source"
    kind = source["type"]
    if kind == "base64":
        return f"data:{text_field(source, 'media_type', at)};base64,{text_field(source, 'data', at)}"
    if kind == "url":
        return text_field(source, "url", at)
    if kind == "file":
        raise fail(at, "file sources need Anthropic's Files API, which this proxy does not offer")
    raise fail(f"{at}.type", f"unsupported source type {kind!r}")


def _document(block: dict[str, Any], where: str) -> list[dict[str, Any]]:
    source = _source(block, where)
    title = block.get("title") if isinstance(block.get("title"), str) else None
    at = f"{where}.source"
    if source["type"] == "text":
        data = text_field(source, "data", at)
        return [_text(f"{title}\n\n{data}" if title else data)]
    if source["type"] == "content":
        inner = source.get("content")
        if isinstance(inner, str):
            return [_text(inner)]
        blocks = block_list(inner, f"{at}.content")
        return [p for i, b in enumerate(blocks) for p in to_parts(b, f"{at}.content.{i}")]
    file: dict[str, Any] = {"file_data": _source_url(block, where)}
    if title:
        file["filename"] = title
    return [{"type": "file", "file": file}]


def _search_result(block: dict[str, Any], where: str) -> str:
    head = f"{text_field(block, 'title', where)}\n{text_field(block, 'source', where)}"
    blocks = block_list(block.get("content"), f"{where}.content")
    texts = [text_field(b, "text", f"{where}.content.{i}") for i, b in enumerate(blocks)]
    return "\n\n".join([head, *texts])

"""Responses content parts -> chat content: text, images (data or https URLs) and files (documents)."""

from __future__ import annotations

import mimetypes
from typing import Any

from translators import json_codec
from translators.openai.types import RequestError

_TEXT_PARTS = frozenset({"input_text", "output_text", "text", "refusal", "summary_text", "reasoning_text"})
IMAGES_FOLLOW = "(The tool returned the images that follow.)"


def _text_of_part(part: dict[str, Any], where: str) -> str:
    text = part.get("refusal") if part.get("type") == "refusal" else part.get("text")
    if not isinstance(text, str):
        raise RequestError(f"'{where}.text' must be a string.", param=f"{where}.text")
    return text


def chat_part(part: Any, where: str) -> dict[str, Any]:
    """One input part -> a chat content part (text, image_url or file)."""
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in _TEXT_PARTS:
        return {"type": "text", "text": _text_of_part(part, where)}
    if kind == "input_image":
        return _image(part, where)
    if kind == "input_file":
        return _file(part, where)
    raise RequestError(
        f"{where}: content of type {kind!r} is not supported (input_text, input_image and input_file are).",
        param=f"{where}.type",
    )


def _image(part: dict[str, Any], where: str) -> dict[str, Any]:
    url = part.get("image_url")
    if not isinstance(url, str) or not url:
        if part.get("file_id"):
            raise RequestError(
                f"{where}: images by file_id are not supported by this proxy (it has no Files API); "
                "send image_url as a data: URL or an https URL.",
                param=f"{where}.file_id",
            )
        raise RequestError(f"Missing required parameter: '{where}.image_url'.", param=f"{where}.image_url")
    image: dict[str, Any] = {"url": url}
    if part.get("detail") in ("low", "high", "auto"):
        image["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image}


def _file(part: dict[str, Any], where: str) -> dict[str, Any]:
    filename = part.get("filename") if isinstance(part.get("filename"), str) else None
    data, url = part.get("file_data"), part.get("file_url")
    if isinstance(data, str) and data:
        if not data.startswith("data:"):  # bare base64, as the API takes it: name its type for the upstream
            mime = (mimetypes.guess_type(filename)[0] if filename else None) or "application/pdf"
            data = f"data:{mime};base64,{data}"
    elif isinstance(url, str) and url:
        data = url
    elif part.get("file_id"):
        raise RequestError(
            f"{where}: files by file_id are not supported by this proxy (it has no Files API); "
            "send file_data (base64) or file_url.",
            param=f"{where}.file_id",
        )
    else:
        raise RequestError(f"{where}: input_file needs file_data or file_url.", param=where)
    file: dict[str, Any] = {"file_data": data}
    if filename:
        file["filename"] = filename
    return {"type": "file", "file": file}


def _parts(content: Any, where: str) -> list[Any]:
    if not isinstance(content, list):
        raise RequestError(f"'{where}' must be a string or an array of content parts.", param=where)
    return content


def user_content(content: Any, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    return [chat_part(p, f"{where}[{k}]") for k, p in enumerate(_parts(content, where))]


def system_content(content: Any, where: str) -> str | list[dict[str, Any]]:
    """System and developer messages take text only."""
    if isinstance(content, str):
        return content
    parts = [chat_part(p, f"{where}[{k}]") for k, p in enumerate(_parts(content, where))]
    for k, p in enumerate(parts):
        if p["type"] != "text":
            raise RequestError(f"{where}[{k}]: system and developer messages take text only.", param=where)
    return parts


def assistant_text(content: Any, where: str) -> str:
    """An assistant message's text: its output_text and refusal parts, joined."""
    if isinstance(content, str):
        return content
    return "".join(_text_of_part(p, f"{where}[{k}]") for k, p in enumerate(_parts(content, where)))


def tool_output(output: Any, where: str) -> tuple[str, list[dict[str, Any]]]:
    """A tool's output -> (the tool message's text, media parts to send as a user message after it)."""
    if isinstance(output, str):
        return output, []
    if isinstance(output, dict):  # older clients sent {content, success}
        content = output.get("content")
        return (content if isinstance(content, str) else json_codec.dumps(output).decode()), []
    parts = [chat_part(p, f"{where}[{k}]") for k, p in enumerate(_parts(output, where))]
    text = "".join(p["text"] for p in parts if p["type"] == "text")
    media = [p for p in parts if p["type"] != "text"]
    return (text or (IMAGES_FOLLOW if media else "")), media

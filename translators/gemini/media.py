"""User message content -> Gemini parts: text, images, audio and files (inline data or file URIs).

A remote URL whose media type its name does not tell (an avatar, a CDN link, a signed URL) is fetched
and inlined by the backend before the translation when it can be (addons/backends/media_fetch.py, which
asks `remote_type_unknown` and `sniff_mime`); one that is still a URL here goes to Gemini as fileData
with a guessed type (FALLBACK_IMAGE for images, a PDF for documents), and Gemini decides.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from translators.gemini.errors import excerpt
from translators.gemini.exceptions import TranslationError

# Extension -> MIME type for remote media. A fixed table: the `mimetypes` module reads the host's
# /etc/mime.types, so its answers differ between machines.
_MIME_BY_EXT = {
    "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp",
    "gif": "image/gif", "heic": "image/heic", "heif": "image/heif", "bmp": "image/bmp",
    "pdf": "application/pdf", "txt": "text/plain", "md": "text/markdown", "html": "text/html",
    "csv": "text/csv", "xml": "text/xml", "json": "application/json",
    "wav": "audio/wav", "mp3": "audio/mp3", "aiff": "audio/aiff", "aac": "audio/aac",
    "ogg": "audio/ogg", "flac": "audio/flac", "m4a": "audio/m4a", "opus": "audio/opus",
    "mp4": "video/mp4", "mpeg": "video/mpeg", "mpg": "video/mpeg", "mov": "video/mov",
    "avi": "video/avi", "flv": "video/x-flv", "webm": "video/webm", "wmv": "video/wmv", "3gp": "video/3gpp",
}  # fmt: skip
GEMINI_MIME_TYPES = frozenset(_MIME_BY_EXT.values())
FALLBACK_IMAGE = "image/jpeg"  # the commonest type of an extension-less image link
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"), (b"%PDF-", "application/pdf"),
)  # fmt: skip
_REMOTE_SCHEMES = ("http", "https", "gs")
_REMOTE_URL = re.compile(r"^(?:https?|gs)://", re.I)
_FILES_API = re.compile(r"^https://generativelanguage\.googleapis\.com/(v1beta|v1)/files/", re.I)


def user_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []  # Gemini rejects empty text parts
    if not isinstance(content, list):
        raise TranslationError(f"{where} must be a string or an array of content parts", param=where)
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        p_where = f"{where}[{j}]"
        if isinstance(part, str):
            if part:
                parts.append({"text": part})
            continue
        if not isinstance(part, dict):
            raise TranslationError(f"{p_where} must be an object", param=p_where)
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise TranslationError(f"{p_where} has no 'text' string", param=f"{p_where}.text")
            if text:
                parts.append({"text": text})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise TranslationError(f"{p_where} has no image URL", param=f"{p_where}.image_url")
            parts.append(_media_part(url, f"{p_where}.image_url"))
        elif kind == "input_audio":
            audio = part.get("input_audio")
            data = audio.get("data") if isinstance(audio, dict) else None
            fmt = audio.get("format") if isinstance(audio, dict) else None
            if not isinstance(data, str) or not data or not isinstance(fmt, str) or not fmt:
                raise TranslationError(
                    f"{p_where} needs input_audio.data and .format", param=f"{p_where}.input_audio"
                )
            parts.append({"inlineData": {"mimeType": f"audio/{fmt.lower()}", "data": data}})
        elif kind == "file":
            parts.append(_file_part(part.get("file"), p_where))
        else:
            raise TranslationError(
                f"{p_where}: content part type {kind!r} is not supported", param=f"{p_where}.type"
            )
    return parts


def _media_part(url: str, where: str) -> dict[str, Any]:
    if url.startswith("data:"):
        return {"inlineData": _data_url(url, where)}
    split = urlsplit(url)
    if split.scheme.lower() not in _REMOTE_SCHEMES:
        raise TranslationError(
            f"{where}: unsupported URL scheme {split.scheme!r}; use http(s) or a data URL", param=where
        )
    mime = _mime_from_path(split.path)
    if mime is None and _FILES_API.match(url):
        return {"fileData": {"fileUri": url}}  # Gemini knows its own files' types
    return {"fileData": {"mimeType": mime or FALLBACK_IMAGE, "fileUri": url}}


def remote_type_unknown(url: str, filename: str = "") -> bool:
    """An http(s) URL whose media type neither its path nor `filename` tells (Gemini's own Files API
    URLs excepted): worth fetching to learn it."""
    try:
        split = urlsplit(url)
    except ValueError:
        return False
    if split.scheme.lower() not in ("http", "https") or not split.hostname or _FILES_API.match(url):
        return False
    return _mime_from_path(split.path) is None and _mime_from_path(filename) is None


def sniff_mime(data: bytes) -> str | None:
    """The media type the first bytes announce, for answers without a usable Content-Type."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, mime in _MAGIC if data.startswith(magic)), None)


def _mime_from_path(path: str) -> str | None:
    name = path.rsplit("/", 1)[-1]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return _MIME_BY_EXT.get(ext)


def _data_url(url: str, where: str) -> dict[str, str]:
    header, sep, payload = url[5:].partition(",")
    if not sep:
        raise TranslationError(f"{where}: malformed data URL (no comma)", param=where)
    fields = header.split(";")
    mime = fields[0].strip().lower()
    if not mime or "/" not in mime:
        raise TranslationError(
            f"{where}: the data URL has no media type (e.g. data:image/png;base64,...)", param=where
        )
    if "base64" in (f.strip().lower() for f in fields[1:]):
        data = "".join(payload.split())
    else:
        data = base64.b64encode(unquote_to_bytes(payload)).decode("ascii")
    if not data:
        raise TranslationError(f"{where}: the data URL is empty", param=where)
    return {"mimeType": mime, "data": data}


def _file_part(file: Any, where: str) -> dict[str, Any]:
    if not isinstance(file, dict):
        raise TranslationError(f"{where}: a file part needs a 'file' object", param=f"{where}.file")
    data = file.get("file_data")
    if isinstance(data, str) and data:
        if data.startswith("data:"):
            return {"inlineData": _data_url(data, f"{where}.file.file_data")}
        if _REMOTE_URL.match(data):
            return {"fileData": _remote_document(data, str(file.get("filename") or ""), f"{where}.file")}
        mime = _mime_from_path(str(file.get("filename") or ""))
        if mime is None:
            raise TranslationError(
                f"{where}: send file_data as a data: URL, or give a filename with a known extension",
                param=f"{where}.file.file_data",
            )
        return {"inlineData": {"mimeType": mime, "data": "".join(data.split())}}
    file_id = file.get("file_id")
    if isinstance(file_id, str) and urlsplit(file_id).scheme.lower() in _REMOTE_SCHEMES:
        return {"fileData": _remote_document(file_id, str(file.get("filename") or ""), f"{where}.file")}
    raise TranslationError(
        f"{where}: Gemini cannot read OpenAI file ids; send the file inline as file_data",
        param=f"{where}.file",
    )


def _remote_document(url: str, filename: str, where: str) -> dict[str, str]:
    """A document by URL: its type from the URL's extension, else the filename's; a Gemini Files API URL
    may go without one (Gemini knows its files), anything else is taken for the usual case, a PDF."""
    try:
        path = urlsplit(url).path
    except ValueError:
        raise TranslationError(
            f"{where}: {excerpt(url)} is not a valid URL", param=f"{where}.file_data"
        ) from None
    mime = _mime_from_path(path) or _mime_from_path(filename)
    if mime is None and _FILES_API.match(url):
        return {"fileUri": url}
    return {"mimeType": mime or "application/pdf", "fileUri": url}

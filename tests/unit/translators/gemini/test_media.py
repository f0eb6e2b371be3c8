"""translators/gemini/media.py: images, audio and files in user messages."""

from __future__ import annotations

import base64

import pytest

from tests.fakes.fake_gemini import validate_request
from tests.unit.translators.gemini.support import translate
from translators.gemini import TranslationError


def test_image_data_url_becomes_inline_data() -> None:
    out = translate(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0K\nGgo=", "detail": "low"},
                    },
                    {"type": "image_url", "image_url": {"url": "data:text/plain,hello%20world"}},
                ],
            }
        ]
    )
    parts = out["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
    # A non-base64 data URL is percent-decoded and re-encoded: Gemini only takes base64.
    assert parts[2] == {
        "inlineData": {"mimeType": "text/plain", "data": base64.b64encode(b"hello world").decode()}
    }


@pytest.mark.parametrize(
    ("url", "mime"),
    [
        ("https://example.test/cat.PNG", "image/png"),
        ("https://example.test/a/b/photo.jpeg?size=large#frag", "image/jpeg"),
        ("http://example.test/x.webp", "image/webp"),
        ("https://example.test/doc.pdf", "application/pdf"),
        ("gs://bucket/clip.mp4", "video/mp4"),
    ],
)
def test_remote_image_url_becomes_file_data_with_guessed_mime(url: str, mime: str) -> None:
    out = translate([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}])
    assert out["contents"][0]["parts"] == [{"fileData": {"mimeType": mime, "fileUri": url}}]


@pytest.mark.parametrize("url", ["ftp://x.test/a.png", "data:;base64,AAAA", "data:image/png;base64"])
def test_unusable_image_urls_raise(url: str) -> None:
    with pytest.raises(TranslationError):
        translate([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}])


def test_input_audio_and_file_parts_become_inline_data() -> None:
    out = translate(
        [
            {
                "role": "user",
                "content": [
                    {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                    {
                        "type": "file",
                        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
                    },
                    {"type": "file", "file": {"file_data": "JVBERi0=", "filename": "b.pdf"}},
                ],
            }
        ]
    )
    assert out["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
    ]
    with pytest.raises(TranslationError, match="file ids"):
        translate([{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}])


def test_cache_control_on_parts_is_dropped_silently() -> None:
    mark = {"type": "ephemeral"}
    out = translate(
        [
            {"role": "system", "content": [{"type": "text", "text": "rules", "cache_control": mark}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look", "cache_control": mark},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,AAAA"},
                        "cache_control": mark,
                    },
                ],
            },
        ]
    )
    validate_request(out)  # Gemini refuses unknown part fields
    assert out["systemInstruction"] == {"parts": [{"text": "rules"}]}
    assert out["contents"][0]["parts"] == [
        {"text": "look"},
        {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
    ]


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        (
            {"file_data": "https://example.test/papers/a.pdf"},
            {"mimeType": "application/pdf", "fileUri": "https://example.test/papers/a.pdf"},
        ),
        (
            {"file_data": "https://example.test/notes.TXT?v=2", "filename": "x.pdf"},
            {"mimeType": "text/plain", "fileUri": "https://example.test/notes.TXT?v=2"},
        ),
        (
            {"file_data": "https://example.test/download?id=7", "filename": "report.csv"},
            {"mimeType": "text/csv", "fileUri": "https://example.test/download?id=7"},
        ),
        (
            {"file_data": "https://example.test/download?id=7"},
            {"mimeType": "application/pdf", "fileUri": "https://example.test/download?id=7"},
        ),
        (
            {"file_data": "https://generativelanguage.googleapis.com/v1beta/files/abc"},
            {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc"},
        ),
    ],
)
def test_file_part_by_url_becomes_file_data(file: dict[str, str], expected: dict[str, str]) -> None:
    out = translate([{"role": "user", "content": [{"type": "file", "file": file}]}])
    validate_request(out)
    assert out["contents"][0]["parts"] == [{"fileData": expected}]


def test_file_part_pdf_data_url_becomes_inline_data_and_a_broken_url_is_a_400() -> None:
    part = {
        "type": "file",
        "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
    }
    out = translate([{"role": "user", "content": [part]}])
    assert out["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}}
    ]
    with pytest.raises(TranslationError) as exc:
        translate(
            [{"role": "user", "content": [{"type": "file", "file": {"file_data": "https://[broken/a.pdf"}}]}]
        )
    assert exc.value.param == "messages[0].content[0].file.file_data"

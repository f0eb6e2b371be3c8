"""translators/gemini/media.py: images, audio and files in user messages."""

from __future__ import annotations

import base64

import pytest

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


def test_remote_image_url_without_known_extension_is_a_clear_error() -> None:
    with pytest.raises(TranslationError) as exc:
        translate(
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x.test/img?id=7"}}],
                }
            ]
        )
    assert "media type" in exc.value.message and "data: URL" in exc.value.message
    assert exc.value.param == "messages[0].content[0].image_url"


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

"""translators/gemini/models.py: models.list pages and request paths."""

from __future__ import annotations

import pytest

from translators.gemini import TranslationError, gemini_path, parse_model_page


def test_parse_model_page() -> None:
    page = {
        "models": [
            {
                "name": "models/gemini-2.5-flash",
                "supportedGenerationMethods": ["generateContent", "countTokens"],
            },
            {"name": "models/text-embedding-004", "supportedGenerationMethods": ["embedContent"]},
            {"name": "models/no-methods"},
            "junk",
        ],
        "nextPageToken": "tok",
    }
    assert parse_model_page(page) == (["gemini-2.5-flash"], "tok")
    assert parse_model_page({"models": []}) == ([], None)
    assert parse_model_page({}) == ([], None)


def test_gemini_path_quotes_model_names() -> None:
    assert gemini_path("gemini-2.5-flash", False) == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert (
        gemini_path("models/gemini-2.5-flash", True)
        == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    assert gemini_path("tunedModels/my-tune", False) == "/v1beta/tunedModels/my-tune:generateContent"
    evil = gemini_path("../x/y:streamGenerateContent?key=1#", False)
    assert evil == "/v1beta/models/..%2Fx%2Fy%3AstreamGenerateContent%3Fkey%3D1%23:generateContent"
    with pytest.raises(TranslationError):
        gemini_path("  ", True)

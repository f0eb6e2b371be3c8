"""The two ways a translation can fail: the client's request, or Gemini's answer."""

from __future__ import annotations


class TranslationError(ValueError):
    """The client's request cannot be expressed for Gemini; answer 400 with this message and `param`."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class GeminiFormatError(ValueError):
    """A 2xx Gemini answer that is not a GenerateContentResponse (the glue should answer 502)."""

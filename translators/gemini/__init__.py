"""OpenAI chat.completions <-> Gemini generateContent (Generative Language API v1beta).

Pure functions plus one incremental stream translator; the backend glue does the HTTP. Gemini-side
field names are proto-JSON camelCase. The mapping follows Google's API reference and LiteLLM's
(see /work/shared/notes/mitmproxy-and-wire-formats.md, sections 2a, 2b and 2d).

Where things are:
- request.py: the request entry point; messages.py (turns), media.py (images, audio, files),
  tools.py (functions, tool_choice), schema.py (JSON Schema -> Gemini Schema), generation.py
  (sampling, response_format, reasoning_effort).
- response.py: a whole answer; stream.py: an SSE stream, translated event by event.
- errors.py: Gemini error bodies, retry delays, per-day quotas, rejected keys.
- signatures.py: Gemini 3 thought signatures carried inside our tool call ids.
- models.py: request paths, models.list pages, model families; exceptions.py: what the above raise.

Things worth knowing before changing anything here:
- Gemini 3 answers tool calls with an opaque `thoughtSignature` and rejects the next turn unless it
  comes back on the same functionCall part; it rides inside the tool call ids we hand out.
- Tool call ids are never sent to Gemini: older models reject unknown `functionCall.id` values, and
  Gemini pairs calls with results by order and name anyway.
- Streams: after an error event nothing more is sent (no `[DONE]`), as OpenAI itself does. A stream
  that ends with no valid event, or before any finishReason, ends with an error event too.
"""

from translators.gemini.errors import gemini_error_to_openai, key_rejected, retry_info
from translators.gemini.exceptions import GeminiFormatError, TranslationError
from translators.gemini.models import gemini_path, parse_model_page
from translators.gemini.request import to_gemini_request
from translators.gemini.response import from_gemini_response, usage_from_metadata
from translators.gemini.schema import clean_schema
from translators.gemini.signatures import decode_tool_call_id, encode_tool_call_id
from translators.gemini.stream import GeminiStreamTranslator

__all__ = [
    "GeminiFormatError",
    "GeminiStreamTranslator",
    "TranslationError",
    "clean_schema",
    "decode_tool_call_id",
    "encode_tool_call_id",
    "from_gemini_response",
    "gemini_error_to_openai",
    "gemini_path",
    "key_rejected",
    "parse_model_page",
    "retry_info",
    "to_gemini_request",
    "usage_from_metadata",
]

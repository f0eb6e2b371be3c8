"""OpenAI chat.completions <-> Gemini generateContent (Generative Language API v1beta).

Pure functions plus one incremental stream translator; the backend glue does the HTTP. Gemini-side
field names are proto-JSON camelCase. The mapping follows Google's API reference and LiteLLM's
(see /work/shared/notes/mitmproxy-and-wire-formats.md, sections 2a, 2b and 2d).

Where things are:
- request.py: the request entry point; messages.py (turns), media.py (images, audio, files),
  tools.py (functions, tool_choice), schema.py (JSON Schema -> Gemini Schema), generation.py
  (sampling, response_format), thinking.py (reasoning_effort and `reasoning` -> thinkingConfig).
- count.py: models.countTokens requests and answers.
- response.py: a whole answer; stream.py: an SSE stream, translated event by event.
- errors.py: Gemini error bodies, retry delays, per-day quotas, rejected keys, context-length failures.
- signatures.py: thought signatures and Gemini's own call ids, kept for our tool call ids (the
  pipeline's signature store) or surfaced as `reasoning_signature`.
- models.py: request paths, models.list pages, model families; exceptions.py: what the above raise.

Things worth knowing before changing anything here:
- The request is the proxy's internal chat request: OpenAI's plus `top_k`, OpenRouter's `reasoning`
  object (wins over `reasoning_effort`; budgets are clamped to each model's range, Gemini 3 gets levels),
  `cache_control` on parts (dropped), `file` parts by data URL or URL, and the assistant's
  `reasoning_content` (dropped: Gemini takes no thought text back) and `reasoning_signature`.
- Gemini 3 answers tool calls with an opaque `thoughtSignature` and rejects the next turn unless it
  comes back on the same functionCall part. The client gets a short id of ours (OpenAI-compatible
  providers refuse ids over 64 characters); the signature and Gemini's own call id are what the answer
  translators add to `kept`, and the request side gets them back from the store (`with_saved_calls`);
  a miss gets Google's placeholder on Gemini 3. Signatures on other parts surface as
  `reasoning_signature` (message field; a delta field in streams, sent with
  the part that carried it) and go back on the first unsigned functionCall of that turn, else its last
  unsigned part.
- Our tool call ids are never sent to Gemini: older models reject unknown `functionCall.id` values, and
  Gemini pairs calls with results by order and name anyway. An id Gemini minted itself goes back on its
  functionCall and functionResponse.
- An input over the model's window (400 "The input token count (N) exceeds ...") becomes OpenAI's
  `context_length_exceeded` with OpenAI's sentence (translators/openai/context.py).
- Streams: after an error event nothing more is sent (no `[DONE]`), as OpenAI itself does. A stream
  that ends with no valid event, or before any finishReason, ends with an error event too.
"""

from translators.gemini.count import read_token_count, to_count_tokens_request
from translators.gemini.errors import gemini_error_to_openai, key_rejected, retry_info
from translators.gemini.exceptions import GeminiFormatError, TranslationError
from translators.gemini.models import count_tokens_path, gemini_path, parse_model_page
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
    "count_tokens_path",
    "decode_tool_call_id",
    "encode_tool_call_id",
    "from_gemini_response",
    "gemini_error_to_openai",
    "gemini_path",
    "key_rejected",
    "parse_model_page",
    "read_token_count",
    "retry_info",
    "to_count_tokens_request",
    "to_gemini_request",
    "usage_from_metadata",
]

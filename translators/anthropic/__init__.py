"""Anthropic Messages API <-> the internal chat pivot (OpenAI chat completions plus extensions).

Pure functions plus one incremental stream renderer; the front-end glue does the HTTP.

Where things are:
- request.py: `parse` / `to_chat`, a Messages request -> `ChatRequest` (the internal chat request, the
  asked model, stream flag, stop sequences, and the ignored fields for a debug line); messages.py
  (turns: tool results, tool calls, thinking), parts.py (text, images, documents, search results),
  tools.py (tools, tool_choice), checks.py (shape checks naming the field).
- response.py: `to_message`, a chat.completion -> a Messages `message`; stream.py: `MessagesStream`,
  chat.completion.chunk SSE -> Messages stream events, and `stream_of` for a whole completion; both read
  the answer through answer.py (stop reason, usage) and stream through blocks.py (block events).
- errors.py: internal OpenAI errors -> Anthropic error bodies and `error` events.
- signatures.py: the thinking-block signatures we hand out (a marked wrapper of the backend's own).
- models.py: the model list; tokens.py: a local input-token estimate (count_tokens).

Things worth knowing before changing anything here:
- Thinking blocks carry the backend's thought signature wrapped as `llmi1.<sig>`; a signature without
  that mark (minted by Anthropic itself) is dropped on the way back, never sent to a backend.
- A Messages stream never ends silently: an upstream error, a cut or a bug ends it with one
  `event: error`, and nothing follows an error or message_stop.
"""

from translators.anthropic.errors import error_body, from_openai, stream_error
from translators.anthropic.models import model_entry, model_list
from translators.anthropic.request import ChatRequest, parse, to_chat
from translators.anthropic.response import to_message
from translators.anthropic.signatures import decode_signature, encode_signature
from translators.anthropic.stream import MessagesStream, stream_of
from translators.anthropic.tokens import estimate

__all__ = [
    "ChatRequest",
    "MessagesStream",
    "decode_signature",
    "encode_signature",
    "error_body",
    "estimate",
    "from_openai",
    "model_entry",
    "model_list",
    "parse",
    "stream_error",
    "stream_of",
    "to_chat",
    "to_message",
]

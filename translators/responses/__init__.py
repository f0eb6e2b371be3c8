"""OpenAI Responses (`/v1/responses`, what Codex speaks) <-> the internal chat pivot. Pure, no I/O.

Where things are:
- request.py: parse() checks a body; to_chat() maps it (with the previous_response_id conversation) to
  the internal chat request, a `ResponsesRequest`. items.py maps input items to chat messages (also a
  response's output, for the conversation store), content.py their content parts, tools.py the tools
  (namespaces flattened, custom tools as one-string functions, built-ins dropped) and tool_choice.
- stream.py: `ResponsesStream`, internal chunk SSE -> Responses SSE events, incremental; stream_of() for
  a whole answer. response.py: to_response(), the same rendering as one `response` object.
  output.py: the items, usage, status and echo envelope both share.
- seal.py: AES-GCM sealing of reasoning `encrypted_content` (the upstream's thought signature rides to
  the client and back); errors.py: error bodies and `response.failed` codes; ids.py: made-up ids.

Things worth knowing:
- Codex dispatches a call on (namespace, name): calls of namespaced tools render with `namespace`.
- Codex runs with `store: false`: the conversation comes back as items each turn, reasoning items with
  the sealed signature included (`include: ["reasoning.encrypted_content"]`).
- Codex reads `response.failed` codes: `context_length_exceeded` makes it compact the conversation.
"""

from translators.responses.errors import from_openai, response_error
from translators.responses.request import ResponsesRequest, parse, to_chat
from translators.responses.response import output_as_chat, to_response
from translators.responses.seal import Sealer, new_key
from translators.responses.stream import ResponsesStream, stream_of

__all__ = [
    "ResponsesRequest",
    "ResponsesStream",
    "Sealer",
    "from_openai",
    "new_key",
    "output_as_chat",
    "parse",
    "response_error",
    "stream_of",
    "to_chat",
    "to_response",
]

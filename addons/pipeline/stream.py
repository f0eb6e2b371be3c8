"""A committed upstream stream, translated to OpenAI SSE as it arrives and copied into a transcript."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from addons.backends.base import StreamTranslator
from addons.frontends.base import StreamTranscript
from addons.pipeline.record import Recorder
from addons.security.redaction import Redactor
from addons.upstream import Answer, UpstreamError
from translators.openai.assemble import assemble_completion
from translators.openai.synthetic import chunk, completion_id, sse_error_event
from translators.sse import encode_data

log = logging.getLogger(__name__)


async def relay_stream(
    resp: Answer,
    translator: StreamTranslator,
    transcript: StreamTranscript,
    prelude: str,
    model: str,
    record: Recorder,
    redactor: Redactor,
) -> AsyncIterator[bytes]:
    """Upstream bytes -> translated SSE, as they arrive. A failure mid-way ends with an SSE error event.

    Error events (an OpenRouter error chunk inside a 200, a Gemini error event) may quote the key, maybe
    cut: they are scrubbed. Only events holding `"error"` are looked at, one bytes search per event."""
    status, error = 200, None
    if prelude:
        delta = {"role": "assistant", "content": prelude + "\n\n"}
        first = encode_data(chunk(completion_id(), model, int(time.time()), delta))
        transcript.sent += first
        yield first
    try:
        async for raw in resp.chunks():
            for out in translator.feed(raw):
                if b'"error"' in out:
                    out = redactor.redact_bytes(out, cut=True)
                transcript.sent += out
                yield out
        tail = translator.finish()
    except UpstreamError as e:
        status, error = e.status, e.message
        tail = [sse_error_event(e.message, e.status, code=e.code)]
    except Exception:
        log.exception("stream translation failed")
        status, error = 500, "Internal proxy error while streaming; the proxy log has the details."
        tail = [sse_error_event(error, 500)]
    finally:
        resp.close()
    for out in tail:
        if b'"error"' in out:
            out = redactor.redact_bytes(out, cut=True)
        transcript.sent += out
        yield out
    assembled = transcript.completion = assemble_completion(bytes(transcript.sent))
    record(status, assembled, None, error or (assembled.get("error") or {}).get("message"))

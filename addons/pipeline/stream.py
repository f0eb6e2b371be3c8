"""A committed upstream stream, translated to OpenAI SSE as it arrives and copied into a transcript."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from addons.backends.base import StreamTranslator
from addons.frontends.base import KEEP_ALIVE, StreamTranscript
from addons.pipeline.commit import Probe, rest_of
from addons.pipeline.record import Recorder
from addons.security.redaction import Redactor
from addons.upstream import Answer, UpstreamError
from translators.openai.assemble import assemble_completion
from translators.openai.roles import RoleOnce
from translators.openai.synthetic import chunk, completion_id, sse_error_event
from translators.sse import encode_data

log = logging.getLogger(__name__)


async def relay_stream(
    resp: Answer,
    translator: StreamTranslator,
    probe: Probe,
    transcript: StreamTranscript,
    prelude: str,
    model: str,
    record: Recorder,
    redactor: Redactor,
    keep: Callable[[], Awaitable[None]],
) -> AsyncIterator[bytes]:
    """Upstream bytes -> translated SSE, as they arrive, after what the commit probe already translated.
    A failure mid-way ends with an SSE error event; keep-alives (a commit that timed out) pass as they are.

    Error events (an OpenRouter error chunk inside a 200, a Gemini error event) may quote the key, maybe
    cut: they are scrubbed. Only events holding `"error"` are looked at, one bytes search per event."""
    status, error = 200, None
    # After the prelude's chunk (which carries `role`), the model's own first chunk must not repeat it.
    roles = RoleOnce(seen=(0,)) if prelude else None

    def sent(out: bytes) -> bytes:
        if b'"error"' in out:
            out = redactor.redact_bytes(out, cut=True)
        if roles is not None:
            out = roles.feed(out)
        transcript.sent += out
        return out

    waiting = _first_content(record, probe.pending is None)  # a commit that timed out still waits
    if prelude:
        first = _prelude_event(prelude, model)
        transcript.sent += first
        yield first
    for out in probe.head:
        yield sent(out)
    try:
        async for raw in rest_of(probe):
            if raw is KEEP_ALIVE:
                yield raw
                continue
            pieces = translator.feed(raw)
            await keep()  # the tool call ids in `pieces` are stored before the client sees them
            waiting = waiting and _first_content(record, any(p[:1] != b":" for p in pieces))  # no comment
            for out in pieces:
                yield sent(out)
        tail = [] if probe.finished else translator.finish()
        await keep()
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
        yield sent(out)
    assembled = transcript.completion = assemble_completion(bytes(transcript.sent))
    record(status, assembled, None, error or (assembled.get("error") or {}).get("message"))


def _prelude_event(prelude: str, model: str) -> bytes:
    """The interactive prelude as the stream's first chunk, which carries `role`."""
    delta = {"role": "assistant", "content": prelude + "\n\n"}
    return encode_data(chunk(completion_id(), model, int(time.time()), delta))


def _first_content(record: Recorder, now: bool) -> bool:
    """Time to first token (from the call's start to the model's first content handed to the client, SSE
    comments and the prelude aside), when it goes out `now`; returns whether it is still to come."""
    if now:
        record.record.ttft_ms = round((time.monotonic() - record.started) * 1000, 1)
    return not now

"""Try each planned attempt in turn until one answers; failed attempts never reach the client.

Every attempt is built afresh from the prepared request. A stream commits at its first event with
content (pipeline/commit.py); everything before that can still move on to the next key, model or backend.
An answer without content (an empty completion, Gemini's MALFORMED_FUNCTION_CALL) is tried once more on
the same target, then failed over.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from addons.backends.base import Backend, Failure, SavedCalls, StreamTranslator
from addons.conversation.prepare import Prepared
from addons.frontends.base import Reply, StreamTranscript
from addons.frontends.openai_chat import error_reply, is_completion, prepend_text
from addons.guards.answer import guard_answer
from addons.guards.call import CallGuards
from addons.guards.stream import guarded, read_until_cut
from addons.pipeline import commit, signatures
from addons.pipeline.core import Core
from addons.pipeline.record import Recorder, log_attempt
from addons.pipeline.stream import relay_stream
from addons.records import CallRecord
from addons.routing.planner import Attempt
from addons.security.redaction import Redactor
from addons.upstream import Answer, UpstreamCall, UpstreamError
from translators import json_codec
from translators.openai.synthetic import error_json
from translators.openai.types import RequestError

log = logging.getLogger(__name__)


class Failover:
    """The attempts of one client call."""

    def __init__(
        self,
        core: Core,
        prep: Prepared,
        record: CallRecord,
        recorder: Recorder,
        guards: CallGuards | None = None,  # None: no guards (embeddings)
    ) -> None:
        self.core = core
        self.guards = guards
        self.prep = prep
        self.record = record
        self.recorder = recorder
        self.stream = record.stream
        self.empty = False  # the latest attempt answered without content
        self.request = prep.request  # as the backends get it (see run())
        self.saved = SavedCalls()  # run() fills `known` where an attempt's backend reads it
        self.models_out: set[tuple[str, str]] = set()  # no key of these can help (context too long)

    async def run(self, attempts: list[Attempt]) -> Reply:
        backends = [self.core.backends[name] for name in dict.fromkeys(at.backend for at in attempts)]
        # A store read per request only where an attempt can use it (an agent's history holds hundreds
        # of tool call ids: ~0.4 ms of SQLite per request for nothing on OpenRouter).
        if any(b.reads_saved_calls for b in backends):
            self.saved = await signatures.recall(self.core.stores.signatures, self.prep.request)
        # Once per request, not per attempt (Gemini fetches media whose type the URL does not tell);
        # history keeps the client's own request.
        for backend in backends:
            self.request = await backend.prepare(self.request)
        failed: Reply | None = None
        tried: set[Attempt] = set()
        cooldowns = self.core.stores.cooldowns
        for at in attempts:
            # One call per distinct (backend, model, key) per request, and none with a key an earlier
            # attempt of this request has just rested (a 429 or 402 says so for the rest of the request).
            if at in tried or (tried and await cooldowns.remaining(at.backend, at.model, at.key)):
                continue
            if (at.backend, at.model) in self.models_out:
                continue
            tried.add(at)
            final, reply = await self._try(at)
            if not final and self.empty:  # a contentless answer is often a fluke: once more, same target
                final, reply = await self._try(at)
            if final:
                return reply
            failed = reply
        assert failed is not None
        return await self._give_up(failed, attempts)

    async def _try(self, at: Attempt) -> tuple[bool, Reply]:
        """(final, reply): final answers go to the client; the others are the latest failure."""
        backend = self.core.backends[at.backend]
        project = self.prep.session.project
        secret = self.core.router.secret(at.backend, at.key)
        try:
            call = backend.build_call(self.request, at.model, secret, self.stream, project, self.saved)
        except RequestError as e:
            return True, error_reply(str(e), e.status, param=e.param)
        rec = self.record
        rec.notes.extend(n for n in backend.request_notes(self.request, at.model) if n not in rec.notes)
        rec.backend, rec.model, rec.key, rec.project = at.backend, at.model, at.key, project
        started = time.monotonic()
        self.empty = False
        try:
            resp = await self.core.upstream.open(call)
        except UpstreamError as e:
            return False, self._broken(at, call, started, e)
        if (
            self.stream
            and 200 <= resp.status < 300
            and "text/event-stream" in resp.headers.get("content-type", "")
        ):
            translator = backend.stream_translator(self.request, at.model, self.saved)
            translator = guarded(translator, self.guards, rec)  # before the probe: it reads guarded events
            probe = await commit.probe(resp, translator, self.core.settings.commit_timeout)
            if probe.refused is not None:
                commit.abandon(probe)
                resp.close()
                return await self._refused(backend, at, call, started, probe.refused)
            log_attempt(rec, at, started, resp.status, None)
            await signatures.keep(self.core.stores.signatures, self.saved)  # what the probe read
            return True, self._commit_stream(at, call, resp, translator, probe)
        try:
            body = await resp.read()
        except UpstreamError as e:
            return False, self._broken(at, call, started, e)
        finally:
            resp.close()
        return await self._judge(backend, at, call, resp, body, started)

    def _broken(self, at: Attempt, call: UpstreamCall, started: float, e: UpstreamError) -> Reply:
        log_attempt(self.record, at, started, e.status, e.code)
        failed = error_reply(e.message, e.status, code=e.code)
        failed.upstream = call
        return failed

    def _commit_stream(
        self, at: Attempt, call: UpstreamCall, resp: Answer, translator: StreamTranslator, probe: commit.Probe
    ) -> Reply:
        self.record.status = resp.status
        probe.rest = read_until_cut(probe.rest, translator)  # what a guard cut off is not read, nor paid for
        transcript = StreamTranscript()
        source = relay_stream(
            resp,
            translator,
            probe,
            transcript,
            self.prep.prelude,
            at.model,
            self.recorder,
            self.core.redactor,
            functools.partial(signatures.keep, self.core.stores.signatures, self.saved),
        )
        return Reply(200, headers={"content-type": "text/event-stream"}, stream=source, upstream=call,
                     transcript=transcript, record=self.record)  # fmt: skip

    async def _refused(
        self, backend: Backend, at: Attempt, call: UpstreamCall, started: float, refused: commit.Refused
    ) -> tuple[bool, Reply]:
        """A stream that failed before its commit: an error like any other, the client has seen nothing."""
        raw = json_codec.dumps(refused.body)
        self.empty = refused.empty
        verdict = (
            Failure(True, reason="empty answer")
            if refused.empty
            else backend.failure(refused.status, {}, refused.upstream or raw)
        )
        await self._rest(at, verdict)
        log_attempt(self.record, at, started, refused.status, refused.code or verdict.reason)
        reply = Reply(refused.status, self._redact_error(raw), upstream=call)
        if verdict.retry:
            return False, reply
        self.record.status = refused.status
        self.recorder(refused.status, None, refused.body, None)
        reply.record = self.record
        return True, reply

    async def _judge(
        self,
        backend: Backend,
        at: Attempt,
        call: UpstreamCall,
        resp: Answer,
        body: bytes,
        started: float,
    ) -> tuple[bool, Reply]:
        """A complete upstream answer: the client's answer, a final error, or a failure to retry past."""
        status = resp.status
        if status >= 400:
            verdict = backend.failure(status, resp.headers, body)
            await self._rest(at, verdict)
            log_attempt(self.record, at, started, status, verdict.reason)
            if verdict.retry:
                translated = backend.translate_response(status, resp.headers, body, at.model)
                return False, Reply(translated.status, translated.body, translated.headers, upstream=call)
        translated = backend.translate_response(status, resp.headers, body, at.model, self.saved)
        result: dict[str, Any] | None = None
        if 200 <= status < 300:
            result = _loads(translated.body) if translated.status < 300 else None
            if self.stream or not is_completion(result):
                # A 2xx that is no chat completion (or not SSE for a stream) is upstream garbage:
                # another key or model may answer properly.
                log_attempt(self.record, at, started, 502, "upstream_bad_response")
                return False, self._garbage(call, resp, body, translated.status, translated.body,
                                            translated.headers)  # fmt: skip
            if (why := _contentless(result)) is not None:
                log_attempt(self.record, at, started, 502, "empty_answer")
                self.empty = True
                failed = error_reply(f"The model returned an empty answer ({why}).", 502, code="empty_answer")
                failed.upstream = call
                return False, failed
            log_attempt(self.record, at, started, status, None)
            await signatures.keep(self.core.stores.signatures, self.saved)
            guarded_answer = guard_answer(result, self.guards, self.record)
            if self.prep.prelude:
                prepend_text(result, self.prep.prelude)
            if guarded_answer or self.prep.prelude:
                translated.body = json_codec.dumps(result)
        self.record.status = translated.status
        if translated.status >= 400:  # a final error, such as a 401 or 400
            translated.body = self._redact_error(translated.body)
        self.recorder(translated.status, result, None if result else _loads(translated.body), None)
        return True, Reply(translated.status, translated.body, translated.headers, upstream=call,
                           record=self.record)  # fmt: skip

    def _garbage(
        self,
        call: UpstreamCall,
        resp: Answer,
        raw: bytes,
        status: int,
        body: bytes,
        headers: Mapping[str, str],
    ) -> Reply:
        if status >= 400:  # the backend already said what was wrong
            failed = Reply(status, body, dict(headers))
        else:
            what = "a non-SSE body to a streaming request" if self.stream else "something not a completion"
            quoted = excerpt(raw, self.core.redactor)
            failed = error_reply(
                f"Upstream {resp.host} answered HTTP {resp.status} with {what}: {quoted}",
                502,
                code="upstream_bad_response",
            )
        failed.upstream = call
        return failed

    async def _give_up(self, failed: Reply, attempts: list[Attempt]) -> Reply:
        """Every attempt failed: the client gets the last failure, told not to retry what we retried."""
        failed.body = self._redact_error(failed.body)
        failed.headers["x-should-retry"] = "false"
        if failed.status == 429:
            wait, exhausted = await self.core.router.exhausted(attempts)
            if wait:
                failed.headers["retry-after"] = str(math.ceil(wait))
                upstream_message = (_loads(failed.body) or {}).get("error", {}).get("message", "")
                failed.body = error_json(
                    "Every candidate is rate limited: " + "; ".join(exhausted) + f". Last upstream answer: "
                    f"{upstream_message}",
                    429,
                    code="all_keys_cooling_down",
                )
        self.record.status = failed.status
        failed.record = self.record
        self.recorder(failed.status, None, _loads(failed.body), None)
        return failed

    def _redact_error(self, body: bytes) -> bytes:
        """Providers echo the key they were sent ("Incorrect API key provided: sk-…"), in the message, in
        metadata or in a body we only quote: no error the client, mitmweb or history gets may carry one.
        Error bodies are JSON by construction; strings are redacted after decoding, so JSON escaping
        cannot hide a key, and a message cut mid-key (an excerpt, Gemini's "..."-shortened messages)
        loses the partial key too."""
        return self.core.redactor.redact_bytes(body, cut=True)

    async def _rest(self, at: Attempt, verdict: Failure) -> None:
        if verdict.other_model:
            self.models_out.add((at.backend, at.model))
        cooldowns, settings = self.core.stores.cooldowns, self.core.settings
        if verdict.retire:
            await cooldowns.retire(at.backend, at.key, settings.credit_retire_seconds or None, verdict.reason)
            self.core.metrics.cooldown_started(at.backend, "*", at.key, "retirement")
            log.warning("%s %s retired: %s", at.backend, at.key, verdict.reason)
        elif verdict.rest:
            seconds = verdict.cooldown if verdict.cooldown is not None else settings.cooldown_seconds
            await cooldowns.cool(at.backend, at.model, at.key, seconds, verdict.reason)
            self.core.metrics.cooldown_started(at.backend, at.model, at.key, "cooldown")
            log.info(
                "%s:%s %s cooling down for %.1f s: %s", at.backend, at.model, at.key, seconds, verdict.reason
            )


def excerpt(body: bytes, redactor: Redactor) -> str:
    """The start of a body, for an error message: redacted before it is cut, then rid of a key the cut
    split (the first 4 KB are plenty for 160 characters of redacted text)."""
    text = redactor.redact_text(body[:4096].decode("utf-8", errors="replace")).strip()
    return redactor.redact_cut(text[:160]) + " …" if len(text) > 160 else (text or "(empty)")


def _contentless(result: Any) -> str | None:
    """Why a completion has nothing in it (its finish reason), or None when it has. A refusal
    (content_filter) or a cut (length) is an answer, not a fluke."""
    choice = (result.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    reason = choice.get("native_finish_reason") or choice.get("finish_reason")
    if message.get("content") or message.get("tool_calls") or choice.get("finish_reason") in commit.ANSWERS:
        return None
    return f"finish_reason {reason}" if reason else "no finish_reason"


def _loads(body: bytes) -> Any:
    try:
        return json_codec.loads(body)
    except (UnicodeDecodeError, json_codec.JSONDecodeError):
        return None

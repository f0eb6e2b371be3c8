"""Each request once, when it has ended: its answer complete or streamed to the end, refused on its head,
or left by its client. Nothing here runs per stream chunk."""

from __future__ import annotations

from dataclasses import dataclass

from addons.frontends.base import Reply
from addons.metrics.classify import error_class
from addons.metrics.registry import Metrics
from addons.records import CallRecord

# dispatch.route()'s names where a label reads better otherwise.
ENDPOINTS = {"model": "models", "method": "other"}


@dataclass(slots=True)
class Finished:
    """One request of ours that has ended, as the metrics see it."""

    endpoint: str  # dispatch.route()'s name for it
    status: int  # what the client got; 499 when it left before the answer ended
    seconds: float  # from the request's first byte to the answer's last
    record: CallRecord | None = None  # model calls
    broke_off: bool = False  # a stream that ended with an error event after its 200


def observe(m: Metrics, done: Finished) -> None:
    rec = done.record
    # Labels name a backend only when one was called: a refusal or the proxy's own answer has none.
    last = rec.attempts[-1] if rec is not None and rec.attempts else None
    called = ("", "", "")
    if rec is not None and last is not None:
        called = (rec.backend or "", rec.model or "", rec.key or "")
    backend, model, key = called
    endpoint = ENDPOINTS.get(done.endpoint, done.endpoint)
    m.requests.labels(endpoint, backend, model, key, str(done.status)).inc()
    m.duration.labels(endpoint, backend, model).observe(max(0.0, done.seconds))
    kind = error_class(done.status, last is not None, last.error if last else None)
    if kind is None and done.broke_off:
        kind = "stream_broken"
    if kind is not None:
        m.errors.labels(endpoint, backend, kind).inc()
    if rec is not None:
        _call(m, rec, endpoint, called, answered=last is not None and last.status < 400)


def _call(m: Metrics, rec: CallRecord, endpoint: str, called: tuple[str, str, str], answered: bool) -> None:
    """What a model call adds: first token, tokens, cost, failovers, guards and repairs."""
    backend, model, _ = called
    if rec.ttft_ms is not None:
        m.ttft.labels(endpoint, backend, model).observe(max(0.0, rec.ttft_ms / 1000))
    if rec.usage is not None:
        u = rec.usage
        counts = (("prompt", u.prompt_tokens), ("completion", u.completion_tokens),
                  ("cached", u.cached_tokens), ("reasoning", u.reasoning_tokens))  # fmt: skip
        for kind, n in counts:
            if n > 0:
                m.tokens.labels(*called, kind).inc(n)
    if rec.cost_usd is not None and rec.cost_usd >= 0:  # (NaN is not >= 0)
        m.cost.labels(*called).inc(rec.cost_usd)
    elif answered:
        m.unpriced.labels(*called).inc()
    for a in rec.attempts[:-1]:
        m.failovers.labels(a.backend, a.model, a.key, str(a.status)).inc()
    for guard in rec.guards:
        m.guard_trips.labels(backend, model, guard).inc()
    if rec.repairs > 0:
        m.repairs.labels(backend, model).inc(rec.repairs)


@dataclass(slots=True)
class _Open:
    endpoint: str
    reply: Reply | None = None


class InFlight:
    """Requests of ours between their head and their end (mitmproxy ends every flow with exactly one
    response or error hook), so that each is observed once however it ends."""

    def __init__(self) -> None:
        self._open: dict[str, _Open] = {}  # by flow id

    def begin(self, flow_id: str, endpoint: str) -> None:
        self._open[flow_id] = _Open(endpoint)

    def answered(self, flow_id: str, reply: Reply) -> None:
        if (call := self._open.get(flow_id)) is not None:
            call.reply = reply

    def end(self, flow_id: str, status: int, seconds: float) -> Finished | None:
        call = self._open.pop(flow_id, None)
        if call is None:
            return None
        reply = call.reply
        if reply is None:
            return Finished(call.endpoint, status, seconds)
        completion = reply.transcript.completion if reply.transcript is not None else None
        broke_off = completion is not None and bool(completion.get("error"))
        return Finished(call.endpoint, status, seconds, reply.record, broke_off)

"""The call record: attempts as they happen, and once the outcome is known its usage and cost (the usage
store) and one history row."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from addons.conversation.prepare import Prepared
from addons.records import AttemptRecord, CallRecord, Usage
from addons.routing.planner import Attempt
from addons.stores.base import HistoryRow, HistorySink, UsageEntry, UsageStore
from addons.usage.pricing import PriceTable, cost_of

# Request fields worth keeping in history next to the prompt.
PARAMS = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "n", "seed", "tools",
          "tool_choice", "response_format", "reasoning_effort", "stream_options")  # fmt: skip


def log_attempt(record: CallRecord, at: Attempt, started: float, status: int, error: str | None) -> None:
    ms = round((time.monotonic() - started) * 1000, 1)
    record.attempts.append(AttemptRecord(at.backend, at.model, at.key, status, error, ms))


@dataclass(frozen=True, slots=True)
class Meter:
    """Prices a call's usage and adds it to the usage store."""

    prices: PriceTable
    store: UsageStore

    def charge(self, record: CallRecord, usage: Any) -> None:
        """A backend answered: `usage` is its OpenAI-shaped usage object (None when it reported none). The
        record gets the tokens and cost; the usage store gets the call, reported or not (then it counts
        as a call of unknown cost)."""
        tokens = Usage.from_openai(usage)
        record.usage = tokens
        record.cost_usd = (
            None if tokens is None else cost_of(usage, tokens, record.backend, record.model, self.prices)
        )
        self.store.add(UsageEntry(
            record.session, record.project, record.backend, record.model, record.key, record.frontend,
            tokens or Usage(), record.cost_usd,
        ))  # fmt: skip


@dataclass(slots=True)
class Recorder:
    """Writes the interaction to history once its outcome is known (a stream knows it only at its end)."""

    history: HistorySink
    prep: Prepared
    record: CallRecord
    started: float
    meter: Meter
    settled: Callable[[CallRecord], None] | None = None  # budgets: told once usage and cost are known

    def __call__(
        self, status: int, result: dict[str, Any] | None, error_body: Any, error: str | None
    ) -> None:
        rec = self.record
        if rec.answered_by == "backend" and rec.status is not None and rec.status < 400:
            self.meter.charge(rec, (result or {}).get("usage"))
        if self.settled is not None:
            self.settled(self.record)
        if not self.history.enabled:
            return
        choices = (result or {}).get("choices") or [{}]
        message = choices[0].get("message") or {}
        if error is None and isinstance(error_body, dict) and isinstance(error_body.get("error"), dict):
            error = error_body["error"].get("message")
        request, tokens = self.prep.request, rec.usage
        self.history.record(HistoryRow(
            session_id=rec.session,
            answered_by=rec.answered_by,
            backend=rec.backend,
            model=rec.model,
            key_name=rec.key,
            project=self.prep.session.project,
            stream=int(rec.stream),
            prompt=request.get("messages"),
            params={k: request[k] for k in PARAMS if k in request},
            reply=_reply_text(message),
            usage=(result or {}).get("usage"),
            latency_ms=round((time.monotonic() - self.started) * 1000, 1),
            status=status,
            error=error,
            frontend=rec.frontend,
            prompt_tokens=tokens and tokens.prompt_tokens,
            completion_tokens=tokens and tokens.completion_tokens,
            cached_tokens=tokens and tokens.cached_tokens,
            reasoning_tokens=tokens and tokens.reasoning_tokens,
            cost_usd=rec.cost_usd,
        ))  # fmt: skip


def _reply_text(message: dict[str, Any]) -> str | None:
    text = message.get("content")
    calls = message.get("tool_calls")
    if calls:
        rendered = json.dumps(calls, ensure_ascii=False)
        return f"{text}\n{rendered}" if text else rendered
    return text

"""The call record: attempts as they happen, and one history row once the outcome is known."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from addons.conversation.prepare import Prepared
from addons.records import AttemptRecord, CallRecord, Usage
from addons.routing.planner import Attempt
from addons.stores.base import HistoryRow, HistorySink

# Request fields worth keeping in history next to the prompt.
PARAMS = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "n", "seed", "tools",
          "tool_choice", "response_format", "reasoning_effort", "stream_options")  # fmt: skip


def log_attempt(record: CallRecord, at: Attempt, started: float, status: int, error: str | None) -> None:
    ms = round((time.monotonic() - started) * 1000, 1)
    record.attempts.append(AttemptRecord(at.backend, at.model, at.key, status, error, ms))


@dataclass(slots=True)
class Recorder:
    """Writes the interaction to history once its outcome is known (a stream knows it only at its end)."""

    history: HistorySink
    prep: Prepared
    record: CallRecord
    started: float
    settled: Callable[[CallRecord], None] | None = None  # budgets: told once usage and cost are known

    def __call__(
        self, status: int, result: dict[str, Any] | None, error_body: Any, error: str | None
    ) -> None:
        if result and result.get("usage"):
            self.record.usage = Usage.from_openai(result["usage"])
        if self.settled is not None:
            self.settled(self.record)
        if not self.history.enabled:
            return
        choices = (result or {}).get("choices") or [{}]
        message = choices[0].get("message") or {}
        if error is None and isinstance(error_body, dict) and isinstance(error_body.get("error"), dict):
            error = error_body["error"].get("message")
        request, rec = self.prep.request, self.record
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
        ))  # fmt: skip


def _reply_text(message: dict[str, Any]) -> str | None:
    text = message.get("content")
    calls = message.get("tool_calls")
    if calls:
        rendered = json.dumps(calls, ensure_ascii=False)
        return f"{text}\n{rendered}" if text else rendered
    return text

"""Last line of defence: no configured key reaches any log output, whoever logs it.

Two outputs exist: log records (every handler on the root logger) and mitmproxy's flow dump (the
Dumper addon prints headers and bodies at `flow_detail >= 2` straight to its stream, not through
logging). The dump's stream is wrapped: each `print` is one write of one whole line or body, so a key is
never split across writes, and a line costs one `contains_secret` scan (nothing at flow_detail 0, which
prints nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import IO, Any

from addons.security.redaction import Redactor


class RedactingFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__("llm_intercept_redaction")
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = self.redactor.redact_text(msg)
        if clean is not msg:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.redact_text(record.exc_text)
        return True


def install_log_redaction(secrets: Iterable[str]) -> None:
    """(Re)attach the filter to every root handler, where all loggers' records pass."""
    flt = RedactingFilter(Redactor(secrets))
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(flt)


class RedactingStream:
    """A text stream that redacts every write (decoded: the dump pretty-prints JSON escapes away)."""

    def __init__(self, inner: IO[str], redactor: Redactor) -> None:
        self.inner = inner
        self.redactor = redactor

    def write(self, text: str) -> int:
        return self.inner.write(self.redactor.redact_text(text))

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding ... of the real stream
        return getattr(self.inner, name)


def redact_flow_dump(dumper: Any, secrets: Iterable[str]) -> None:
    """(Re)wrap the Dumper addon's output stream (`dumper.outfp`) with the current secrets."""
    if dumper is None or not hasattr(dumper, "outfp"):
        return
    inner = dumper.outfp.inner if isinstance(dumper.outfp, RedactingStream) else dumper.outfp
    dumper.outfp = RedactingStream(inner, Redactor(secrets))

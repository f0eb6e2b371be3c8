"""Last line of defence: no configured key reaches any log output, whoever logs it."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from addons.redaction import Redactor


class RedactingFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__("llm_intercept_redaction")
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if self.redactor.contains_secret(msg):
            record.msg, record.args = self.redactor.redact(msg), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and self.redactor.contains_secret(record.exc_text):
            record.exc_text = self.redactor.redact(record.exc_text)
        return True


def install_log_redaction(secrets: Iterable[str]) -> None:
    """(Re)attach the filter to every root handler, where all loggers' records pass."""
    flt = RedactingFilter(Redactor(secrets))
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(flt)

"""How an LLM flow presents itself in mitmweb, the console and saved flows. Pure Python."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from addons.records import CallRecord
from addons.security.redaction import Redactor
from addons.usage.report import call_summary
from translators import json_codec

MARK = ":robot_face:"  # any non-empty mark: mitmweb shows it, `~marked` filters LLM flows
MASK = "********"
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "proxy-authorization", "cookie"})
MAX_KEPT_BODY = 2 * 1024 * 1024


def comment(record: CallRecord | None) -> str:
    """One line for mitmweb's comment column: who answered first (the column is narrow), then the rest."""
    if record is None:
        return "session ?"
    parts = []
    if record.answered_by == "proxy":
        parts.append("answered by llm-intercept")
    elif record.backend:
        via = f" via route {record.route}" if record.route else ""
        parts.append(f"{record.backend}:{record.model} key {record.key}{via}")
    parts.append(f"session {record.session}")
    if record.frontend != "openai_chat":
        parts.append(f"via {record.frontend}")
    parts.extend(record.notes)
    if record.commands:
        parts.append("commands " + " ".join(record.commands))
    attempts = record.attempts
    if len(attempts) > 1 or (attempts and attempts[0].status != 200):
        parts.append(
            "attempts "
            + " → ".join(f"{a.backend}:{a.model} {a.key} {a.status} {a.ms:.0f}ms" for a in attempts)
        )
    if record.answered_by == "backend" and record.status is not None and record.status < 400:
        parts.append(call_summary(record.usage, record.cost_usd))  # what the usage store counted
    if record.guards:
        parts.append("guard " + ", ".join(record.guards))
    if record.repairs:
        parts.append(f"repaired {record.repairs} tool call(s)")
    if record.status is not None:
        parts.append(f"status {record.status}")
    return " · ".join(parts)


def metadata(record: CallRecord, redactor: Redactor) -> dict[str, Any]:
    """The record as flow metadata, every key in it redacted (a model name or a command argument may
    hold one). A JSON round trip in C instead of asdict's copy (this runs once or twice per call); the
    text is searched once and the copy walked only where a key was found (JSON spells keys literally)."""
    try:
        text = json_codec.dumps(record)
    except TypeError:  # a lone surrogate (from an escaped prompt) has no UTF-8: the slow way
        return redactor.redact_json(record.as_metadata())
    meta: dict[str, Any] = json_codec.loads(text)
    return redactor.redact_json(meta) if redactor.contains_secret(text.decode("utf-8")) else meta


def masks(name: str, value: str, redactor: Redactor) -> bool:
    """Whether a header value is hidden: credential headers always, and any header whose value holds a
    configured secret (clients and providers put keys in headers nobody listed, such as `api-key`)."""
    return name.lower() in SECRET_HEADERS or redactor.decoded_contains_secret(value)


def shown_url(url: str, redactor: Redactor) -> str:
    """A URL (or path) for display: a key in it (a model name, a session id), percent-encoded or not,
    is redacted; URLs without one come back as they are."""
    plain = unquote(url)
    shown = redactor.redact_text(plain)
    return url if shown is plain else shown


def client_request(
    method: str, url: str, headers: Mapping[str, str], body: bytes, redactor: Redactor
) -> dict[str, Any]:
    """The request as the client sent it, secrets masked, for comparing with what really left.
    Redacted whatever the redaction setting says: that only decides what is sent upstream."""
    kept = body[:MAX_KEPT_BODY]
    return {
        "method": method,
        "url": shown_url(url, redactor),
        "headers": [[k, MASK if masks(k, v, redactor) else v] for k, v in headers.items()],
        # Cut bodies may end mid-key.
        "body": redactor.redact_bytes(kept, cut=len(body) > MAX_KEPT_BODY).decode("utf-8", errors="replace"),
        "truncated": len(body) > MAX_KEPT_BODY,
    }

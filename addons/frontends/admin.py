"""The proxy's own read-only endpoints: `/v1/sessions/{id}/history`."""

from __future__ import annotations

import json
import re
from typing import Any

from addons.frontends.base import Reply
from addons.frontends.openai_chat import error_reply
from translators import json_codec

SESSIONS_PREFIXES = ("/v1/sessions/", "/sessions/")


def history_limit(query: dict[str, list[str]]) -> int | Reply:
    """The row limit asked for, or the error reply for a bad one."""
    raw = (query.get("limit") or ["1000"])[0]
    # ASCII digits, few of them: str.isdigit() takes "²" (int() then fails) and int() refuses 4301 digits.
    if not re.fullmatch(r"[0-9]{1,5}", raw) or not 1 <= int(raw) <= 10_000:
        return error_reply("limit must be a number from 1 to 10000.", 400, param="limit")
    return int(raw)


def history_reply(session_id: str, rows: list[dict[str, Any]], query: dict[str, list[str]]) -> Reply:
    if (query.get("format") or [""])[0] == "jsonl":
        body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
        return Reply(200, body, {"content-type": "application/x-ndjson"})
    return Reply(200, json_codec.dumps({"object": "list", "session_id": session_id, "data": rows}))


def history_off() -> Reply:
    return error_reply("Session history is off (LLM_HISTORY=off).", 404, code="history_off")

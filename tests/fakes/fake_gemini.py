"""Fake Gemini (Generative Language API v1beta) speaking the real wire format, for end-to-end tests.

Runs in the test process on 127.0.0.1 (port 0) in a background thread; built on tests.fakes.server.

    with FakeGemini(keys=("gm-key-1",)) as fake:
        base = fake.base_url                      # "http://127.0.0.1:<port>"; paths start with /v1beta
        fake.enqueue(Reply(text="hi", chunks=3))  # next generate call answers "hi" (JSON or SSE)
        fake.enqueue(rate_limited("45.83s", per_day=True), key="gm-key-1")  # only for that key
        fake.enqueue(Reply(tool_calls=[("get_weather", {"city": "Paris"})]))  # with a thoughtSignature
        ...
        fake.last_generate().json()               # what the proxy sent
        fake.signature_checks                     # did the next turn echo the signature?
        fake.enqueue(Reply(quote_tool_results=True))  # "tool results: ..." what the functionResponses held

Without a script, generate calls answer `echo: <last user text>`, split into `chunks` stream events
`delay` seconds apart. Streams are `data: {...}\\r\\n\\r\\n` events, one HTTP chunk each, no [DONE].
`:countTokens` answers a `totalTokens` that grows with the request's size.
Requests are checked the way Google checks them (unknown fields, empty parts, bad schemas, both
thinkingBudget and thinkingLevel, missing thought signatures) and refused with Google's error shapes,
so a translator bug shows up as the 400 a real key would get.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.server import FakeServer, Recorded, Script

DEFAULT_KEYS = ("AIzaSyfdxd7_xy1iP7ttiSkV-M7DkDV6-IQ7PN5", "AIzaSyTge7slBfP2cZ0K-OEjW5fM2UzOMK5dmZS")
GENERATE = ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]
DEFAULT_MODELS: tuple[tuple[str, list[str]], ...] = (
    ("gemini-2.5-flash", GENERATE),
    ("gemini-2.5-pro", GENERATE),
    ("gemini-2.5-flash-lite", GENERATE),
    ("gemini-2.0-flash", GENERATE),
    ("gemini-3-pro-preview", GENERATE),
    ("text-embedding-004", ["embedContent"]),
    ("imagen-4.0-generate-001", ["predict"]),
)
DUMMY_SIGNATURE = "skip_thought_signature_validator"  # Google's documented "history from elsewhere" value

# Field names Google accepts (proto JSON takes camelCase and snake_case alike).
_REQUEST_FIELDS = {
    "contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings",
    "cachedContent", "labels",
}  # fmt: skip
_GENERATION_FIELDS = {
    "temperature", "topP", "topK", "maxOutputTokens", "stopSequences", "candidateCount", "seed",
    "presencePenalty", "frequencyPenalty", "responseMimeType", "responseSchema", "responseJsonSchema",
    "responseLogprobs", "logprobs", "responseModalities", "speechConfig", "mediaResolution",
    "thinkingConfig", "enableEnhancedCivicAnswers",
}  # fmt: skip
_PART_FIELDS = {
    "text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
    "codeExecutionResult", "thought", "thoughtSignature", "videoMetadata",
}  # fmt: skip
_SCHEMA_FIELDS = {
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
    "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example",
    "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum",
}  # fmt: skip
_SCHEMA_TYPES = {"string", "number", "integer", "boolean", "array", "object"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.title() for w in rest)


class GeminiRejection(Exception):
    """A request Google would refuse: status, google status string, message."""

    def __init__(self, status: int, google_status: str, message: str) -> None:
        super().__init__(message)
        self.status, self.google_status, self.message = status, google_status, message


# ---------------------------------------------------------------------------------------------------
# Scripts
# ---------------------------------------------------------------------------------------------------


@dataclass
class Reply:
    """A scripted model answer, sent as JSON or as an SSE stream to match the request.

    text=None echoes the last user text; quote_tool_results answers `tool results: ` and the response
    of every functionResponse after the last model turn (so a test sees what reached the model). With
    tool_calls the answer is functionCall parts; the first carries `signature` ("auto" makes one up,
    None sends none, like Gemini 2.x) and the fake then checks that later requests send it back on that
    call (see FakeGemini.signature_checks).
    """

    text: str | None = None
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    signature: str | None = "auto"
    call_ids: bool = False  # give functionCall.id values (newer models do)
    thoughts: str | None = None  # a thought-summary part (thought: true) before the answer
    finish_reason: str = "STOP"
    block_reason: str | None = None  # promptFeedback.blockReason and no candidates
    usage: dict[str, int] | None = None  # usageMetadata override
    chunks: int | None = None  # stream: text events (default FakeGemini.chunks)
    delay: float | None = None  # stream: seconds between events (default FakeGemini.delay)
    header_delay: float = 0.0  # seconds before the status line
    drop_after: int | None = None  # stream: cut the connection after this many events
    error_after: int | None = None  # stream: after this many events, send `error` as an event and end
    error: dict[str, Any] | None = None  # the mid-stream error object (default: 503 UNAVAILABLE)
    quote_tool_results: bool = False


def error_json(
    status: int, google_status: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict:
    err: dict[str, Any] = {"code": status, "message": message, "status": google_status}
    if details:
        err["details"] = details
    return {"error": err}


def api_error(
    status: int, google_status: str, message: str, details: list[dict[str, Any]] | None = None, **kw: Any
) -> Script:
    """An HTTP error answer in google.rpc.Status shape; kw goes to Script (header_delay, headers...)."""
    return Script(status=status, json_body=error_json(status, google_status, message, details), **kw)


def invalid_key_body() -> dict[str, Any]:
    message = "API key not valid. Please pass a valid API key."
    return error_json(
        400,
        "INVALID_ARGUMENT",
        message,
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": message,
            },
        ],
    )


_FREE_TIER_METRIC = "generativelanguage.googleapis.com/generate_content_free_tier_requests"


def rate_limit_body(
    retry_delay: str = "23s", *, per_day: bool = False, model: str = "gemini-2.5-flash"
) -> dict:
    """Google's 429 RESOURCE_EXHAUSTED body: QuotaFailure, Help and RetryInfo, as the real API sends."""
    quota_id = (
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
        if per_day
        else "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
    )
    seconds = retry_delay.rstrip("s")
    message = (
        "You exceeded your current quota, please check your plan and billing details. For more information "
        "on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n* Quota exceeded for "
        "metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: "
        f"{20 if per_day else 10}, model: {model}\nPlease retry in {seconds}s."
    )
    return error_json(
        429,
        "RESOURCE_EXHAUSTED",
        message,
        [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": _FREE_TIER_METRIC,
                        "quotaId": quota_id,
                        "quotaDimensions": {"location": "global", "model": model},
                        "quotaValue": "20" if per_day else "10",
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay},
        ],
    )


def rate_limited(retry_delay: str = "23s", *, per_day: bool = False, **kw: Any) -> Script:
    return Script(status=429, json_body=rate_limit_body(retry_delay, per_day=per_day), **kw)


_SERVER_ERRORS = {
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "The request timed out. Please try again."),
}  # fmt: skip


def server_error(status: int = 503, **kw: Any) -> Script:
    google_status, message = _SERVER_ERRORS.get(status, ("UNKNOWN", "Unknown error."))
    return api_error(status, google_status, message, **kw)


def garbage(status: int = 502, body: bytes = b"<html><body>502 Bad Gateway</body></html>") -> Script:
    return Script(status=status, raw_body=body, headers={"content-type": "text/html"})


def dropped() -> Script:
    """Close the connection without answering."""
    return Script(drop_before_headers=True)


def sse_event(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\r\n\r\n"


def raw_stream(
    events: list[dict[str, Any] | bytes], *, delay: float = 0.0, drop_after: int | None = None
) -> Script:
    """Exactly these SSE events (dicts are framed as Gemini does; bytes go out untouched)."""
    frames = [e if isinstance(e, bytes) else sse_event(e) for e in events]
    return Script(events=frames, delay=delay, drop_after=drop_after)


@dataclass(frozen=True)
class SignatureCheck:
    """A later request carried back a functionCall the fake had issued with a thoughtSignature."""

    function: str
    expected: str
    received: str | None

    @property
    def ok(self) -> bool:
        return self.received in (self.expected, DUMMY_SIGNATURE)


@dataclass
class _Queued:
    script: Reply | Script
    model: str | None
    key: str | None


# ---------------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------------


class FakeGemini(FakeServer):
    def __init__(
        self,
        keys: tuple[str, ...] = DEFAULT_KEYS,
        models: tuple[tuple[str, list[str]], ...] = DEFAULT_MODELS,
        *,
        chunks: int = 3,
        delay: float = 0.0,
        strict: bool = True,
    ) -> None:
        super().__init__()
        self.keys = set(keys)
        self.models = list(models)
        self.chunks = chunks
        self.delay = delay
        self.strict = strict  # validate requests like Google does (and refuse missing signatures)
        self.signature_checks: list[SignatureCheck] = []
        self._queue: deque[_Queued] = deque()
        self._models_queue: deque[Script] = deque()
        self._issued: dict[tuple[str, str], str] = {}  # (name, canonical args) -> signature
        self._counter = itertools.count(1)
        self._state_lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """Root URL; the API paths carry the version (`/v1beta/models/...`), as gemini_path() builds them."""
        return f"http://127.0.0.1:{self.port}"

    # -- scripting ----------------------------------------------------------------------------------

    def enqueue(self, *scripts: Reply | Script, model: str | None = None, key: str | None = None) -> None:  # type: ignore[override]
        """Queue answers for generate calls, used in order. `model`/`key` restrict which calls take them."""
        with self._state_lock:
            self._queue.extend(_Queued(s, model, key) for s in scripts)

    def enqueue_models(self, *scripts: Script) -> None:
        """Queue answers for GET /v1beta/models (faults on model discovery)."""
        with self._state_lock:
            self._models_queue.extend(scripts)

    def reset(self) -> None:
        super().reset()
        with self._state_lock:
            self._queue.clear()
            self._models_queue.clear()
            self._issued.clear()
            self.signature_checks = []

    def pending(self) -> int:
        """Scripts not consumed yet (a test can assert its faults were all hit)."""
        with self._state_lock:
            return len(self._queue)

    # -- inspection ---------------------------------------------------------------------------------

    def generate_requests(self) -> list[Recorded]:
        with self._lock:
            return [
                r for r in self.requests if ":generateContent" in r.path or ":streamGenerateContent" in r.path
            ]

    def last_generate(self) -> Recorded:
        reqs = self.generate_requests()
        if not reqs:
            raise AssertionError("the fake Gemini received no generate request")
        return reqs[-1]

    @staticmethod
    def key_of(rec: Recorded) -> str | None:
        return (
            rec.headers.get("x-goog-api-key") or (parse_qs(urlsplit(rec.path).query).get("key") or [None])[0]
        )

    def keys_used(self) -> list[str | None]:
        return [self.key_of(r) for r in self.generate_requests()]

    # -- serving ------------------------------------------------------------------------------------

    def handle(self, h: BaseHTTPRequestHandler, rec: Recorded) -> None:
        url = urlsplit(rec.path)
        query = parse_qs(url.query)
        path = unquote(url.path)
        if self.key_of(rec) not in self.keys:
            self.send_json(h, 400, invalid_key_body())
            return
        try:
            if rec.method == "GET" and path == "/v1beta/models":
                self._list_models(h, query)
            elif rec.method == "GET" and path.startswith("/v1beta/models/"):
                self._get_model(h, path.removeprefix("/v1beta/models/"))
            elif rec.method == "POST" and path.startswith("/v1beta/models/") and ":" in path:
                model, _, method = path.removeprefix("/v1beta/models/").rpartition(":")
                if method == "countTokens":
                    self._count_tokens(h, rec, model)
                    return
                if method not in ("generateContent", "streamGenerateContent"):
                    raise GeminiRejection(404, "NOT_FOUND", f"Method {method} not found.")
                self._generate(h, rec, model, method == "streamGenerateContent", query.get("alt") == ["sse"])
            else:
                self.send_json(
                    h, 404, error_json(404, "NOT_FOUND", f"Requested entity was not found: {path}")
                )
        except GeminiRejection as r:
            self.send_json(h, r.status, error_json(r.status, r.google_status, r.message))

    def _list_models(self, h: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> None:
        with self._state_lock:
            fault = self._models_queue.popleft() if self._models_queue else None
        if fault is not None:
            self.play(h, fault)
            return
        size = int((query.get("pageSize") or ["50"])[0] or 50)
        size = 50 if size <= 0 else min(size, 1000)
        start = 0
        token = (query.get("pageToken") or [""])[0]
        if token:
            try:
                start = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("offset:"))
            except ValueError:
                raise GeminiRejection(400, "INVALID_ARGUMENT", "Invalid page token.") from None
        page = self.models[start : start + size]
        body: dict[str, Any] = {"models": [model_resource(name, methods) for name, methods in page]}
        if start + size < len(self.models):
            body["nextPageToken"] = base64.urlsafe_b64encode(f"offset:{start + size}".encode()).decode()
        self.send_json(h, 200, body)

    def _get_model(self, h: BaseHTTPRequestHandler, name: str) -> None:
        for model, methods in self.models:
            if model == name:
                self.send_json(h, 200, model_resource(model, methods))
                return
        raise GeminiRejection(404, "NOT_FOUND", f"models/{name} is not found for API version v1beta.")

    def _take(self, model: str, key: str | None) -> Reply | Script | None:
        with self._state_lock:
            for queued in self._queue:
                if queued.model in (None, model) and queued.key in (None, key):
                    self._queue.remove(queued)
                    return queued.script
        return None

    def _supported(self, model: str, method: str) -> None:
        if not any(m == model and method in methods for m, methods in self.models):
            raise GeminiRejection(
                404,
                "NOT_FOUND",
                f"models/{model} is not found for API version v1beta, or is not supported for "
                f"{method}. Call ListModels to see the list of available models and their "
                "supported methods.",
            )

    def _count_tokens(self, h: BaseHTTPRequestHandler, rec: Recorded, model: str) -> None:
        """models.countTokens: `contents` alone, or a whole `generateContentRequest` (system
        instruction and tools count too). The count is the request's JSON size / 4."""
        self._supported(model, "countTokens")
        body = _json_body(rec)
        if not isinstance(body, dict) or set(body) - {"contents", "generateContentRequest"}:
            raise _bad("Invalid JSON payload received. Expected contents or generateContentRequest.")
        request = body.get("generateContentRequest")
        if self.strict:
            if isinstance(request, dict):
                if not request.get("model"):
                    raise _bad("* CountTokensRequest.generate_content_request.model: model is required\n")
                validate_request({k: v for k, v in request.items() if k != "model"})
            else:
                validate_request({"contents": body.get("contents")})
        self.send_json(h, 200, {"totalTokens": max(1, len(_canonical(body)) // 4)})

    def _generate(
        self, h: BaseHTTPRequestHandler, rec: Recorded, model: str, stream: bool, sse: bool
    ) -> None:
        self._supported(model, "generateContent")
        body = _json_body(rec)
        if self.strict:
            validate_request(body)
        self._check_signatures(body)

        script = self._take(model, self.key_of(rec))
        if isinstance(script, Script):
            self.play(h, script, key=self.key_of(rec))
            return
        reply = script or Reply()
        if reply.header_delay:
            self.pause(reply.header_delay)
        events = self._render(reply, body, model)
        if not stream:
            self.send_json(h, 200, _merge(events))
        elif not sse:  # streamGenerateContent without alt=sse answers one JSON array
            self.send_json(h, 200, events)
        else:
            frames = [sse_event(e) for e in events]
            if reply.error_after is not None:
                error = reply.error or error_json(
                    503, "UNAVAILABLE", "The model is overloaded. Please try again later."
                )
                frames = [*frames[: reply.error_after], sse_event(error)]
            delay = self.delay if reply.delay is None else reply.delay
            self.send_stream(h, frames, delay, drop_after=reply.drop_after)

    # -- answers ------------------------------------------------------------------------------------

    def _render(self, reply: Reply, body: dict[str, Any], model: str) -> list[dict[str, Any]]:
        """The answer as stream events; a non-stream answer is their merge."""
        n = next(self._counter)
        meta = {"modelVersion": model, "responseId": f"fake-{n}"}
        prompt_tokens = max(1, _count_words(body))
        if reply.block_reason:
            usage = reply.usage or {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens}
            feedback = {"blockReason": reply.block_reason, "safetyRatings": []}
            return [{"promptFeedback": feedback, "usageMetadata": usage, **meta}]

        if reply.quote_tool_results:
            text = "tool results: " + " ".join(tool_results(body))
        elif reply.text is None and not reply.tool_calls:
            text = "echo: " + last_user_text(body)
        else:
            text = reply.text or ""
        thoughts_tokens = len(reply.thoughts.split()) if reply.thoughts else 0
        out_tokens = max(1, len(text.split())) if text else len(reply.tool_calls)
        usage = reply.usage or {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": out_tokens,
            "totalTokenCount": prompt_tokens + out_tokens + thoughts_tokens,
            **({"thoughtsTokenCount": thoughts_tokens} if thoughts_tokens else {}),
        }

        def event(parts: list[dict[str, Any]], final: bool = False) -> dict[str, Any]:
            cand: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
            if final:
                cand["finishReason"] = reply.finish_reason
            ev: dict[str, Any] = {"candidates": [cand], **meta}
            if final:
                ev["usageMetadata"] = usage
            return ev

        events: list[dict[str, Any]] = []
        if reply.thoughts:
            events.append(event([{"text": reply.thoughts, "thought": True}]))
        if reply.tool_calls:
            calls = []
            for i, (name, args) in enumerate(reply.tool_calls):
                part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
                if reply.call_ids:
                    part["functionCall"]["id"] = f"fc-{n}-{i}"
                if i == 0 and reply.signature:  # Gemini 3 signs the first call of a step only
                    sig = reply.signature
                    if sig == "auto":
                        sig = base64.b64encode(f"fake-thought-signature-{n}".encode()).decode()
                    part["thoughtSignature"] = sig
                    with self._state_lock:
                        self._issued[(name, _canonical(args))] = sig
                calls.append(part)
            if text:
                events.append(event([{"text": text}]))
            events.append(event(calls))
            events.append(event([{"text": ""}], final=True))  # Gemini sends STOP in its own event
            return events
        pieces = _split(text, reply.chunks or self.chunks)
        events.extend(event([{"text": p}], final=(i == len(pieces) - 1)) for i, p in enumerate(pieces))
        return events

    def _check_signatures(self, body: dict[str, Any]) -> None:
        with self._state_lock:
            if not self._issued:
                return
            issued = dict(self._issued)
        for i, content in enumerate(body.get("contents") or []):
            if content.get("role") != "model":
                continue
            for part in content.get("parts") or []:
                call = part.get("functionCall")
                if not isinstance(call, dict):
                    continue
                expected = issued.get((call.get("name"), _canonical(call.get("args") or {})))
                if expected is None:
                    continue
                check = SignatureCheck(call["name"], expected, part.get("thoughtSignature"))
                with self._state_lock:
                    self.signature_checks.append(check)
                if self.strict and not check.ok:
                    raise _bad(
                        "Function call is missing a thought_signature in functionCall parts. This is "
                        "required for tools to work correctly, and missing thought_signature may lead to "
                        f"degraded model performance. Additional data, function call "
                        f"`default_api:{call['name']}` , position {i + 1}. Please refer to "
                        "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
                    )


# ---------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------


def model_resource(name: str, methods: list[str]) -> dict[str, Any]:
    return {
        "name": f"models/{name}",
        "baseModelId": name,
        "version": "001",
        "displayName": name.replace("-", " ").title(),
        "description": f"Fake {name}",
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 65536,
        "supportedGenerationMethods": list(methods),
        "temperature": 1,
        "maxTemperature": 2,
        "topP": 0.95,
        "topK": 64,
        "thinking": name.startswith(("gemini-2.5", "gemini-3")),
    }


def last_user_text(body: dict[str, Any]) -> str:
    """Text of the last user turn; a tool-result turn reads as `name -> {response}`."""
    for content in reversed(body.get("contents") or []):
        if content.get("role", "user") != "user":
            continue
        bits = []
        for part in content.get("parts") or []:
            if isinstance(part.get("text"), str):
                bits.append(part["text"])
            elif isinstance(part.get("functionResponse"), dict):
                fr = part["functionResponse"]
                bits.append(f"{fr.get('name')} -> {json.dumps(fr.get('response'), sort_keys=True)}")
        return " ".join(bits)
    return ""


def tool_results(body: dict[str, Any]) -> list[str]:
    """Each functionResponse's response (as JSON) in the contents after the last model turn."""
    found: list[str] = []
    for content in body.get("contents") or []:
        if content.get("role") == "model":
            found = []
            continue
        for part in content.get("parts") or []:
            if isinstance(part.get("functionResponse"), dict):
                found.append(json.dumps(part["functionResponse"].get("response"), sort_keys=True))
    return found


def _json_body(rec: Recorded) -> Any:
    try:
        return json.loads(rec.body or b"null")
    except ValueError:
        raise GeminiRejection(400, "INVALID_ARGUMENT", "Invalid JSON payload received.") from None


def _count_words(body: dict[str, Any]) -> int:
    contents = list(body.get("contents") or [])
    if isinstance(body.get("systemInstruction"), dict):
        contents.append(body["systemInstruction"])
    return sum(len(str(p.get("text", "")).split()) for c in contents for p in c.get("parts") or [])


def _split(text: str, n: int) -> list[str]:
    size = max(1, -(-len(text) // max(1, n)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _canonical(args: Any) -> str:
    return json.dumps(args, sort_keys=True, separators=(",", ":"))


def _merge(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Stream events -> the equivalent single generateContent answer (parts concatenated, texts joined)."""
    merged: dict[str, Any] = {}
    parts: list[dict[str, Any]] = []
    cand: dict[str, Any] = {}
    for ev in events:
        for key, value in ev.items():
            if key != "candidates":
                merged[key] = value
        for c in ev.get("candidates") or []:
            for p in c["content"]["parts"]:
                if (
                    "text" in p
                    and parts
                    and "text" in parts[-1]
                    and p.get("thought") == parts[-1].get("thought")
                ):
                    parts[-1] = {**parts[-1], "text": parts[-1]["text"] + p["text"]}
                elif p != {"text": ""}:
                    parts.append(p)
            cand.update({k: v for k, v in c.items() if k != "content"})
    if "promptFeedback" not in merged:
        merged["candidates"] = [{"content": {"role": "model", "parts": parts or [{"text": ""}]}, **cand}]
    return merged


def _bad(message: str) -> GeminiRejection:
    return GeminiRejection(400, "INVALID_ARGUMENT", message)


def _unknown(name: str, where: str) -> GeminiRejection:
    at = f" at '{where}'" if where else ""
    return _bad(f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.')


def validate_request(body: Any) -> None:
    """Refuse what Google refuses, with its wording, so translator bugs fail loudly in e2e tests."""
    if not isinstance(body, dict):
        raise _bad("Invalid JSON payload received. Expected an object.")
    for key in body:
        if _camel(key) not in _REQUEST_FIELDS:
            raise _unknown(key, "")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise _bad("* GenerateContentRequest.contents: contents is not specified\n")
    for i, content in enumerate(contents):
        if content.get("role") not in ("user", "model"):
            raise _bad(f"Please use a valid role: user, model. (contents[{i}].role={content.get('role')!r})")
        _validate_parts(content.get("parts"), f"contents[{i}]")
    system = body.get("systemInstruction")
    if system is not None:
        _validate_parts(system.get("parts") if isinstance(system, dict) else None, "system_instruction")
    gen = body.get("generationConfig") or {}
    for key in gen:
        if _camel(key) not in _GENERATION_FIELDS:
            raise _unknown(key, "generation_config")
    thinking = gen.get("thinkingConfig") or {}
    if "thinkingBudget" in thinking and "thinkingLevel" in thinking:
        raise _bad("You can only set only one of thinking budget and thinking level.")
    if "responseSchema" in gen:
        _validate_schema(gen["responseSchema"], "generation_config.response_schema")
    for t, tool in enumerate(body.get("tools") or []):
        for d, decl in enumerate(tool.get("functionDeclarations") or []):
            params = decl.get("parameters")
            if params is None:
                continue
            where = f"tools[{t}].function_declarations[{d}].parameters"
            _validate_schema(params, where)
            if params.get("type") == "object" and not params.get("properties"):
                raise _bad(
                    f"* GenerateContentRequest.{where}.properties: should be non-empty for OBJECT type\n"
                )


def _validate_parts(parts: Any, where: str) -> None:
    if not isinstance(parts, list) or not parts:
        raise _bad(f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty.\n")
    for j, part in enumerate(parts):
        unknown = [k for k in part if _camel(k) not in _PART_FIELDS]
        if unknown:
            raise _unknown(unknown[0], f"{where}.parts[{j}]")
        if part.get("text") == "" and len(part) == 1:
            raise _bad(
                "Unable to submit request because it has an empty text parameter. "
                "Add a value to the parameter and try again."
            )
        if "functionResponse" in part and not isinstance(part["functionResponse"].get("response"), dict):
            raise _bad(
                f"* GenerateContentRequest.{where}.parts[{j}].function_response.response: not an object\n"
            )


def _validate_schema(schema: Any, where: str) -> None:
    if not isinstance(schema, dict):
        raise _bad(f"Invalid JSON payload received. '{where}' must be an object.")
    for key in schema:
        if key not in _SCHEMA_FIELDS:
            raise _unknown(key, where)
    kind = str(schema.get("type", "")).lower()
    if kind and kind not in _SCHEMA_TYPES:
        raise _bad(f"Invalid value at '{where}.type': {schema['type']!r}")
    if "enum" in schema and kind not in ("", "string"):
        raise _bad(f"* GenerateContentRequest.{where}.enum: only allowed for STRING type\n")
    if kind == "array" and "items" not in schema:
        raise _bad(f"* GenerateContentRequest.{where}.items: missing field.\n")
    properties = schema.get("properties") or {}
    for name, sub in properties.items():
        _validate_schema(sub, f"{where}.properties[{name}]")
    for r in schema.get("required") or []:
        if r not in properties:
            raise _bad(f"* GenerateContentRequest.{where}.required[{r}]: property is not defined\n")
    if "items" in schema:
        _validate_schema(schema["items"], f"{where}.items")
    for k, sub in enumerate(schema.get("anyOf") or []):
        _validate_schema(sub, f"{where}.any_of[{k}]")

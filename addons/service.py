"""What the proxy does with one OpenAI API call, independent of mitmproxy.

The addon turns a flow into (method, path, headers, body), awaits a `Reply` and applies it to the flow.
A Reply is either complete (`body`) or streamed (`stream`, an async iterator of SSE bytes that the
addon hands to the relay). Every failure a client can see is an OpenAI error; nothing raises out.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from addons.backends.base import Backend, Failure, StreamTranslator, UpstreamCall
from addons.catalog import ModelCatalog
from addons.conversation import Prepared, prepare
from addons.history import HistoryStore, default_path
from addons.redaction import MIN_SECRET_LENGTH, Redactor
from addons.routing import MAX_ROUTES, Attempt, Cooldowns, Plan, Router, parse_routes
from addons.sessions import Session, SessionStore, valid_session_id
from addons.settings import KEY_ENV, Settings, SettingsError
from addons.state import PERSISTED, RuntimeConfig, StateFile
from addons.upstream import UpstreamClient, UpstreamError, UpstreamResponse
from translators import json_codec
from translators.assemble import assemble_completion
from translators.openai_types import TOO_DEEP, RequestError, parse_chat_request
from translators.sse import encode_data
from translators.synthetic import (
    PROXY_OWNER,
    chunk,
    completion,
    completion_id,
    error_json,
    model_list,
    sse_error_event,
    stream_completion,
)

log = logging.getLogger(__name__)

VERSION = "0.1.0"
CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
MODELS_PATHS = frozenset({"/v1/models", "/models"})
SESSIONS_PREFIXES = ("/v1/sessions/", "/sessions/")
JSON = {"content-type": "application/json"}
# Request fields worth keeping in history next to the prompt.
PARAMS = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "n", "seed", "tools",
          "tool_choice", "response_format", "reasoning_effort", "stream_options")  # fmt: skip


@dataclass(slots=True)
class StreamTranscript:
    """What a relayed stream sent, and the completion it amounts to once it ended (history and mitmweb
    both want it: reassembled once)."""

    sent: bytearray = field(default_factory=bytearray)
    completion: dict[str, Any] | None = None


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    stream: AsyncIterator[bytes] | None = None
    upstream: UpstreamCall | None = None  # what really left the proxy (carries the key: mask before display)
    transcript: StreamTranscript | None = None
    info: dict[str, Any] = field(default_factory=dict)  # plain data for flow metadata


def error_reply(message: str, status: int, **kw: Any) -> Reply:
    headers = dict(JSON)
    if status >= 500 or status == 429:
        # The proxy already did what retrying could do; don't let SDKs multiply the load.
        headers["x-should-retry"] = "false"
    return Reply(status, error_json(message, status, **kw), headers)


# What route() answers, for the 404 of a path it does not.
SERVED = "/v1/chat/completions, /v1/models, /v1/models/{model} and /v1/sessions/{id}/history"


def route(method: str, path: str) -> str | None:
    """Name of the endpoint a request is for, or None when it is not ours to handle. `path` is canonical
    (addons.mitm.edge.canonical_path): decoded, dot segments resolved; matched case-insensitively."""
    path = path.split("?", 1)[0].rstrip("/").lower() or "/"
    if path in CHAT_PATHS:
        return "chat" if method == "POST" else "method"
    if path in MODELS_PATHS:
        return "models" if method == "GET" else "method"
    if any(path.startswith(p + "/") for p in MODELS_PATHS):
        return "model" if method == "GET" else "method"
    if path.startswith(SESSIONS_PREFIXES) and path.endswith("/history"):
        return "history" if method == "GET" else "method"
    return None


class ProxyService:
    def __init__(
        self,
        settings: Settings,
        backends: Mapping[str, Backend],
        upstream: UpstreamClient,
        previous: ProxyService | None = None,
    ) -> None:
        """`previous`: the service this one replaces after an option change. Its live sessions, cooldowns,
        key rotation and what commands changed carry over: changing one option must not reset them."""
        self.settings = settings
        self.backends = dict(backends)
        self.upstream = upstream
        self.catalog = ModelCatalog(tuple(self.backends))
        rings = {b: settings.keyring(b) for b in self.backends}
        if previous is None:
            self.router = Router(rings, Cooldowns())
            self.sessions = SessionStore(idle_ttl=settings.session_idle_ttl)
        else:
            # Same keys: the same router, rotation positions included; other keys: only the cooldowns.
            same = previous.router.rings == rings
            self.router = previous.router if same else Router(rings, previous.router.cooldowns)
            self.sessions = previous.sessions
            self.sessions.idle_ttl = settings.session_idle_ttl
        secrets = settings.all_secrets()
        for name, secret in secrets:
            if len(secret) < MIN_SECRET_LENGTH:
                log.warning(
                    "%s is shorter than %d characters: not used for redaction", name, MIN_SECRET_LENGTH
                )
        self.redactor = Redactor(s for _, s in secrets)
        self.state_file = StateFile(settings.state_file)
        self.runtime = self._load_runtime()
        if previous is not None:
            self.runtime.carry(previous.runtime)
        hist = settings.history_db
        path = None if hist == "off" else default_path() if hist == "auto" else Path(hist)
        self.history = HistoryStore(
            path,
            scrub=self.redactor.redact,
            max_days=settings.history_max_days,
            max_bytes=int(settings.history_max_mb * 1024 * 1024),
        )

    def _load_runtime(self) -> RuntimeConfig:
        s = self.settings
        base = {
            "default_backend": s.llm_backend,
            "interactive_mode": s.interactive_mode,
            "redact_api_keys_in_prompts": s.redact_api_keys_in_prompts,
        }
        saved, problems = self.state_file.load(tuple(self.backends))
        for p in problems:
            # Warning, not error: mitmdump exits on any error logged during start-up.
            log.warning("state: %s", p)
        current = dict(base)
        for name, value in saved.items():
            setting = PERSISTED.get(name)
            # Options given explicitly on the command line win over the saved file.
            if setting and not s.sources.get(setting, "").startswith("--set"):
                current[name] = value
        routes, problems = parse_routes(s.routes, self.backends)
        if problems:
            raise SettingsError(f"mitm_config.yaml: {'; '.join(problems)}")
        saved_routes, problems = parse_routes(saved.get("routes") or {}, self.backends)
        for p in problems:
            log.warning("state: %s; skipped", p)
        # Saved routes win by name; the total stays within MAX_ROUTES.
        routes = {**routes, **saved_routes}
        for name in list(routes)[MAX_ROUTES:]:
            log.warning("state: more than %d routes; route %s skipped", MAX_ROUTES, name)
            del routes[name]
        return RuntimeConfig(
            current["default_backend"],
            current["interactive_mode"],
            current["redact_api_keys_in_prompts"],
            routes=routes,
            base=base,
        )

    # -- endpoints ---------------------------------------------------------------------------------

    async def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply | None:
        reply = await self._handle(method, path, headers, body)
        if reply is not None:
            self._scrub(reply)
        return reply

    def _scrub(self, reply: Reply) -> None:
        """Whatever produced a reply, its headers (some copied from the provider) and a complete body
        (an error quoting a model name, an answer repeating a prompt sent with redaction off) carry no
        key: the client, mitmweb and saved flows all see them. A key-free reply costs one scan."""
        redactor = self.redactor
        for name, value in reply.headers.items():
            reply.headers[name] = redactor.redact_text(value)
        reply.body = redactor.redact_bytes(reply.body)

    async def _handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply | None:
        kind = route(method, path)
        if kind is None:
            return None
        clean = path.split("?", 1)[0].rstrip("/")
        if not self.authorised(headers):
            return unauthorised()
        try:
            if kind == "chat":
                return await self.chat(body, headers)
            if kind == "models":
                return await self.list_models()
            if kind == "model":
                return await self.get_model(clean[clean.lower().index("/models/") + len("/models/") :])
            if kind == "history":
                query = parse_qs(path.partition("?")[2])
                return await self.session_history(
                    clean[clean.lower().index("/sessions/") + len("/sessions/") : -len("/history")], query
                )
            allowed = "POST" if clean.lower().endswith("completions") else "GET"
            return error_reply(f"Method {method} is not allowed here; use {allowed}.", 405)
        except RecursionError:
            # Any walk over a pathologically deep (but small) body: the client's input, not our bug.
            return error_reply(TOO_DEEP, 400)
        except UnicodeEncodeError as e:
            # JSON may escape lone UTF-16 surrogates ("\ud800") that no UTF-8 text can carry onwards.
            return error_reply(
                f"Request text is not valid Unicode: {e.reason} at {e.object[e.start : e.end]!r}.", 400
            )
        except Exception:
            log.exception("internal error while handling %s %s", method, clean)
            return error_reply(
                "Internal proxy error; the proxy log has the details.", 500, code="proxy_error"
            )

    async def chat(self, raw: bytes, headers: Mapping[str, str]) -> Reply:
        started = time.monotonic()
        if len(raw) > self.settings.max_request_bytes:
            return too_large(len(raw), self.settings.max_request_bytes)
        try:
            request = parse_chat_request(raw)
        except RequestError as e:
            return error_reply(str(e), e.status, param=e.param)
        session_id = valid_session_id(headers.get("x-session-id"))
        if session_id is None:
            return error_reply(
                "X-Session-ID must be 1-128 printable characters.", 400, code="invalid_session_id"
            )
        session = self.sessions.get(session_id)
        prep = prepare(
            request, raw, session, self.runtime, self.catalog, self.key_counts(),
            self.settings.command_prefix, self.redactor, self.banner, self.status_text,
            commands=self.settings.commands,
        )  # fmt: skip
        if prep.changes_global:
            self.save_state()
        stream = bool(request.get("stream"))
        # Whatever the redaction toggle says, flow comments and metadata never carry a key.
        commands = [self.redactor.redact(c) for c in prep.commands]
        info: dict[str, Any] = {"session": session.id, "stream": stream, "commands": commands}
        if prep.reply_text is not None:
            return self._proxy_answer(prep, stream, info, started)

        requested = session.model or prep.request.get("model") or ""
        if not requested:
            return error_reply("Missing required parameter: 'model'.", 400, param="model")
        route = self.runtime.routes.get(requested)
        if route is not None:
            if not route.elements:
                return error_reply(f"Failover route '{route.name}' has no elements yet.", 400, param="model")
            elements, policy = route.elements, route.policy
            info["route"] = route.name
        else:
            elements = [self.catalog.split(requested, session.backend or self.runtime.default_backend)]
            policy = "k"
        plan = self.router.plan(elements, policy)
        if not plan.attempts:
            return self._nothing_usable(elements, plan)
        info["attempts"] = []
        record = self._recorder(prep, info, started)
        return await self._attempt(prep, plan.attempts, stream, info, record)

    async def _attempt(
        self,
        prep: Prepared,
        attempts: list[Attempt],
        stream: bool,
        info: dict[str, Any],
        record: Callable[..., None],
    ) -> Reply:
        """Try each attempt in turn until one answers; failed attempts never reach the client."""
        failed: Reply | None = None
        tried: set[Attempt] = set()
        for at in attempts:
            # One call per distinct (backend, model, key) per request, and none with a key an earlier
            # attempt of this request has just rested (a 429 or 402 says so for the rest of the request).
            if at in tried or (tried and self.router.cooldowns.remaining(at.backend, at.model, at.key)):
                continue
            tried.add(at)
            backend = self.backends[at.backend]
            outgoing = prep.request
            if prep.session.project and at.backend == "openrouter":
                outgoing = {**outgoing, "project": prep.session.project}
            try:
                call = backend.build_call(outgoing, at.model, self.router.secret(at.backend, at.key), stream)
            except RequestError as e:
                return error_reply(str(e), e.status, param=e.param)
            info.update(backend=at.backend, model=at.model, key=at.key, project=prep.session.project)
            t0 = time.monotonic()
            log_attempt = _attempt_logger(info, at, t0)
            try:
                resp = await self.upstream.open(call)
            except UpstreamError as e:
                log_attempt(e.status, e.code)
                failed = error_reply(e.message, e.status, code=e.code)
                failed.upstream = call
                continue
            is_sse = "text/event-stream" in resp.headers.get("content-type", "")
            if stream and 200 <= resp.status < 300 and is_sse:
                log_attempt(resp.status, None)
                info["status"] = resp.status
                transcript = StreamTranscript()
                translator = backend.stream_translator(prep.request, at.model)
                source = _relay_stream(
                    resp, translator, transcript, prep.prelude, at.model, record, self.redactor
                )
                return Reply(200, headers={"content-type": "text/event-stream"}, stream=source, upstream=call,
                             transcript=transcript, info=info)  # fmt: skip
            try:
                body = await resp.read()
            except UpstreamError as e:
                log_attempt(e.status, e.code)
                failed = error_reply(e.message, e.status, code=e.code)
                failed.upstream = call
                continue
            finally:
                resp.close()
            status = resp.status
            if status >= 400:
                verdict = backend.failure(status, resp.headers, body)
                self._rest(at, verdict)
                log_attempt(status, verdict.reason)
                if verdict.retry:
                    translated = backend.translate_response(status, resp.headers, body, at.model)
                    failed = Reply(translated.status, translated.body, translated.headers, upstream=call)
                    continue
            translated = backend.translate_response(status, resp.headers, body, at.model)
            result: dict[str, Any] | None = None
            if 200 <= status < 300:
                result = _loads(translated.body) if translated.status < 300 else None
                if stream or not _is_completion(result):
                    # A 2xx that is no chat completion (or not SSE for a stream) is upstream garbage:
                    # another key or model may answer properly.
                    what = "a non-SSE body to a streaming request" if stream else "something not a completion"
                    log_attempt(502, "upstream_bad_response")
                    if translated.status >= 400:  # the backend already said what was wrong
                        failed = Reply(translated.status, translated.body, translated.headers)
                    else:
                        failed = error_reply(
                            f"Upstream {resp.host} answered HTTP {status} with {what}: "
                            + _excerpt(body, self.redactor),
                            502,
                            code="upstream_bad_response",
                        )
                    failed.upstream = call
                    continue
                log_attempt(status, None)
                if prep.prelude:
                    _prepend(result, prep.prelude)
                    translated.body = json_codec.dumps(result)
            info["status"] = translated.status
            if translated.status >= 400:  # a final error, such as a 401 or 400
                translated.body = self._redact_error(translated.body)
            record(translated.status, result, None if result else _loads(translated.body), None)
            return Reply(translated.status, translated.body, translated.headers, upstream=call, info=info)
        # Every attempt failed: the client gets the last failure, told not to retry what we retried.
        assert failed is not None
        failed.body = self._redact_error(failed.body)
        failed.headers["x-should-retry"] = "false"
        if failed.status == 429:
            wait, exhausted = self.router.exhausted(attempts)
            if wait:
                failed.headers["retry-after"] = str(math.ceil(wait))
                upstream_message = (_loads(failed.body) or {}).get("error", {}).get("message", "")
                failed.body = error_json(
                    "Every candidate is rate limited: " + "; ".join(exhausted) + f". Last upstream answer: "
                    f"{upstream_message}",
                    429,
                    code="all_keys_cooling_down",
                )
        info["status"] = failed.status
        failed.info = info
        record(failed.status, None, _loads(failed.body), None)
        return failed

    def _redact_error(self, body: bytes) -> bytes:
        """Providers echo the key they were sent ("Incorrect API key provided: sk-…"), in the message, in
        metadata or in a body we only quote: no error the client, mitmweb or history gets may carry one.
        Error bodies are JSON by construction; strings are redacted after decoding, so JSON escaping
        cannot hide a key, and a message cut mid-key (an excerpt, Gemini's "..."-shortened messages)
        loses the partial key too."""
        return self.redactor.redact_bytes(body, cut=True)

    def _rest(self, at: Attempt, verdict: Failure) -> None:
        if verdict.retire:
            seconds = self.settings.credit_retire_seconds or None
            self.router.cooldowns.retire(at.backend, at.key, seconds, verdict.reason)
            log.warning("%s %s retired: %s", at.backend, at.key, verdict.reason)
        elif verdict.rest:
            seconds = verdict.cooldown if verdict.cooldown is not None else self.settings.cooldown_seconds
            self.router.cooldowns.cool(at.backend, at.model, at.key, seconds, verdict.reason)
            log.info(
                "%s:%s %s cooling down for %.1f s: %s", at.backend, at.model, at.key, seconds, verdict.reason
            )

    def _nothing_usable(self, elements: list[tuple[str, str]], plan: Plan) -> Reply:
        if plan.exhausted:
            reply = error_reply(
                "Every candidate is cooling down: " + "; ".join(plan.exhausted) + ".",
                429,
                code="all_keys_cooling_down",
            )
            reply.headers["retry-after"] = str(math.ceil(plan.retry_after or 1))
            return reply
        missing = sorted({b for b, _ in elements if not self.router.count(b)})
        envs = " / ".join(f"{KEY_ENV[b]} (or {KEY_ENV[b]}_1 .. _20)" for b in missing)
        return error_reply(
            f"No API key configured for backend {', '.join(repr(b) for b in missing)}: set {envs} "
            "and restart the proxy.",
            503,
            code="no_api_key",
        )

    def _proxy_answer(self, prep: Prepared, stream: bool, info: dict[str, Any], started: float) -> Reply:
        # The proxy's own answers are shown in mitmweb and saved with flows: never echo a key.
        text = self.redactor.redact(prep.reply_text or "")
        model = "llm-intercept"
        info.update(answered_by="proxy", status=200)
        self._recorder(prep, info, started)(200, completion(text, model), None, None)
        if stream:
            include_usage = bool((prep.request.get("stream_options") or {}).get("include_usage"))
            body = stream_completion(text, model, include_usage=include_usage)
            return Reply(
                200, body, {"content-type": "text/event-stream", "cache-control": "no-cache"}, info=info
            )
        return Reply(200, json_codec.dumps(completion(text, model)), info=info)

    def _recorder(self, prep: Prepared, info: dict[str, Any], started: float) -> Callable[..., None]:
        """Returns a callback that writes the interaction to history once its outcome is known."""

        def record(status: int, result: dict[str, Any] | None, error_body: Any, error: str | None) -> None:
            if result and result.get("usage"):
                info["usage"] = result["usage"]
            if not self.history.enabled:
                return
            choices = (result or {}).get("choices") or [{}]
            message = choices[0].get("message") or {}
            err = error
            if err is None and isinstance(error_body, dict) and isinstance(error_body.get("error"), dict):
                err = error_body["error"].get("message")
            self.history.record(
                session_id=prep.session.id,
                answered_by=info.get("answered_by", "backend"),
                backend=info.get("backend"),
                model=info.get("model"),
                key_name=info.get("key"),
                project=prep.session.project,
                stream=int(bool(info.get("stream"))),
                prompt=prep.request.get("messages"),
                params={k: prep.request[k] for k in PARAMS if k in prep.request},
                reply=_reply_text(message),
                usage=(result or {}).get("usage"),
                latency_ms=round((time.monotonic() - started) * 1000, 1),
                status=status,
                error=err,
            )

        return record

    async def list_models(self) -> Reply:
        await self.catalog.wait_ready(self.settings.discovery_timeout)
        return Reply(200, _dumps(model_list(self.catalog.listing(self.runtime.default_backend))))

    async def get_model(self, model_id: str) -> Reply:
        await self.catalog.wait_ready(self.settings.discovery_timeout)
        default = self.runtime.default_backend
        backend, model = self.catalog.split(model_id, default)
        if backend in self.backends and self.catalog.entry(backend).knows(model):
            shown = model if backend == default else f"{backend}:{model}"
            return Reply(200, _dumps(model_list([(shown, backend)])["data"][0]))
        return error_reply(
            f"The model '{model_id}' does not exist.", 404, param="model", code="model_not_found"
        )

    async def session_history(self, session_id: str, query: dict[str, list[str]]) -> Reply:
        if not self.history.enabled:
            return error_reply("Session history is off (LLM_HISTORY=off).", 404, code="history_off")
        limit_raw = (query.get("limit") or ["1000"])[0]
        # ASCII digits, few of them: str.isdigit() takes "²" (int() then fails) and int() refuses 4301 digits.
        if not re.fullmatch(r"[0-9]{1,5}", limit_raw) or not 1 <= int(limit_raw) <= 10_000:
            return error_reply("limit must be a number from 1 to 10000.", 400, param="limit")
        await asyncio.to_thread(self.history.flush)
        rows = await asyncio.to_thread(self.history.read, session_id, int(limit_raw))
        if (query.get("format") or [""])[0] == "jsonl":
            body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
            return Reply(200, body, {"content-type": "application/x-ndjson"})
        return Reply(200, _dumps({"object": "list", "session_id": session_id, "data": rows}))

    def authorised(self, headers: Mapping[str, str]) -> bool:
        token = self.settings.proxy_api_key
        if token is None:
            return True
        expected = token.get_secret_value().encode()
        auth = headers.get("authorization", "")
        given = auth[7:].strip() if auth[:7].lower() == "bearer " else headers.get("x-api-key", "")
        return hmac.compare_digest(given.encode(), expected)

    # -- what the user sees of the proxy -----------------------------------------------------------

    def key_counts(self) -> dict[str, int]:
        return {b: self.router.count(b) for b in self.backends}

    def _backend_line(self, name: str) -> str:
        e = self.catalog.entry(name)
        keys = self.router.count(name)
        if e.status == "ok":
            return f"{name}: {keys} key(s), {len(e.models)} models"
        return f"{name}: {keys} key(s), unavailable ({e.reason or 'discovery pending'})"

    def banner(self, session: Session) -> str:
        lines = [
            f"llm-intercept {VERSION} · session {session.id}",
            f"default backend: {self.runtime.default_backend}",
            *(self._backend_line(b) for b in self.backends),
            f"type {self.settings.command_prefix}help for commands",
        ]
        return "\n".join(lines)

    def status_text(self, session: Session | None = None) -> str:
        rt = self.runtime
        lines = [f"llm-intercept {VERSION} status", f"default backend: {rt.default_backend}"]
        for b in self.backends:
            ring = self.settings.keyring(b)
            names = ", ".join(ring.names) or "none"
            lines.append(f"{self._backend_line(b)}; keys: {names}")
        cooling = self.router.cooldowns.active()
        lines.append("cooldowns: " + ("none" if not cooling else ""))
        for b, m, k, left, why in cooling:
            when = "retired" if left == math.inf else f"{math.ceil(left)} s left"
            lines.append(f"  {b}:{m} {k}: {when} ({why})")
        lines.append("failover routes: " + ("none" if not rt.routes else ""))
        lines += [f"  {r.describe()}" for r in rt.routes.values()]
        lines.append(f"redaction: {'on' if rt.redact else 'off'}; sessions: {len(self.sessions)}")
        if session is not None:
            lines.append(f"this session: {self.describe_session(session)}")
        return "\n".join(lines)

    def describe_session(self, s: Session) -> str:
        rt = self.runtime
        interactive = rt.interactive if s.interactive is None else s.interactive
        return (
            f"{s.id}: model={s.model or '(request)'}, backend={s.backend or rt.default_backend}, "
            f"project={s.project or '-'}, interactive={'on' if interactive else 'off'}"
        )

    def sessions_text(self) -> str:
        sessions = self.sessions.all()
        if not sessions:
            return "no sessions yet"
        return "\n".join(self.describe_session(s) for s in sessions)

    def routes_text(self) -> str:
        routes = self.runtime.routes.values()
        return "\n".join(r.describe() for r in routes) or "no failover routes"

    def save_state(self) -> None:
        # Snapshot now, on the loop; the file is written by a background thread.
        self.state_file.save_later(self.runtime.snapshot())

    # -- start-up ----------------------------------------------------------------------------------

    async def discover(self) -> None:
        """Ask each backend for its models, concurrently; failures mark the backend unavailable."""
        await asyncio.gather(*(self._discover_one(name) for name in self.backends))
        self.catalog.mark_ready()

    async def _discover_one(self, name: str) -> None:
        backend = self.backends[name]
        ring = self.settings.keyring(name)
        if not ring:
            env = KEY_ENV[name]
            self.catalog.set_unavailable(name, f"no API key (set {env} or {env}_1..{env}_20)")
            log.warning(
                "%s: no API key configured (set %s or %s_1..%s_20); backend unavailable", name, env, env, env
            )
            return
        # One bad key (revoked, out of quota) must not hide a backend the other keys can reach.
        failures = []
        for key_name in ring.names:
            try:
                models = await asyncio.wait_for(
                    backend.discover_models(self.upstream, ring.secret(key_name)),
                    self.settings.discovery_timeout,
                )
            except Exception as e:
                failures.append(
                    f"{key_name}: {self.redactor.redact_cut(_describe(e, self.settings.discovery_timeout))}"
                )
                continue
            self.catalog.set_models(name, models)
            log.info("%s: %d models, %d key(s)", name, len(models), len(ring))
            if failures:
                log.warning("%s: discovery failed with %s", name, "; ".join(failures))
            return
        reason = "; ".join(failures)
        self.catalog.set_unavailable(name, reason)
        log.error("%s: model discovery failed (%s); backend marked unavailable", name, reason)


async def _relay_stream(
    resp: UpstreamResponse,
    translator: StreamTranslator,
    transcript: StreamTranscript,
    prelude: str,
    model: str,
    record: Callable[..., None],
    redactor: Redactor,
) -> AsyncIterator[bytes]:
    """Upstream bytes -> translated SSE, as they arrive. A failure mid-way ends with an SSE error event.

    Error events (an OpenRouter error chunk inside a 200, a Gemini error event) may quote the key, maybe
    cut: they are scrubbed. Only events holding `"error"` are looked at, one bytes search per event."""
    status, error = 200, None
    if prelude:
        first = encode_data(
            chunk(
                completion_id(), model, int(time.time()), {"role": "assistant", "content": prelude + "\n\n"}
            )
        )
        transcript.sent += first
        yield first
    try:
        async for raw in resp.chunks():
            for out in translator.feed(raw):
                if b'"error"' in out:
                    out = redactor.redact_bytes(out, cut=True)
                transcript.sent += out
                yield out
        tail = translator.finish()
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
        if b'"error"' in out:
            out = redactor.redact_bytes(out, cut=True)
        transcript.sent += out
        yield out
    assembled = transcript.completion = assemble_completion(bytes(transcript.sent))
    record(status, assembled, None, error or (assembled.get("error") or {}).get("message"))


def _attempt_logger(info: dict[str, Any], at: Attempt, t0: float) -> Callable[[int, str | None], None]:
    def log_attempt(status: int, error: str | None) -> None:
        info["attempts"].append(
            {"backend": at.backend, "model": at.model, "key": at.key, "status": status, "error": error,
             "ms": round((time.monotonic() - t0) * 1000, 1)}
        )  # fmt: skip

    return log_attempt


def _is_completion(result: Any) -> bool:
    return isinstance(result, dict) and isinstance(result.get("choices"), list)


def _excerpt(body: bytes, redactor: Redactor) -> str:
    """The start of a body, for an error message: redacted before it is cut, then rid of a key the cut
    split (the first 4 KB are plenty for 160 characters of redacted text)."""
    text = redactor.redact_text(body[:4096].decode("utf-8", errors="replace")).strip()
    return redactor.redact_cut(text[:160]) + " …" if len(text) > 160 else (text or "(empty)")


def _prepend(result: dict[str, Any], prelude: str) -> None:
    choices = result.get("choices") or []
    if choices and isinstance(choices[0].get("message"), dict):
        msg = choices[0]["message"]
        msg["content"] = prelude + "\n\n" + (msg.get("content") or "")


def _reply_text(message: dict[str, Any]) -> str | None:
    text = message.get("content")
    calls = message.get("tool_calls")
    if calls:
        rendered = json.dumps(calls, ensure_ascii=False)
        return f"{text}\n{rendered}" if text else rendered
    return text


def unauthorised() -> Reply:
    return error_reply(
        "Missing or wrong proxy access token: send it as 'Authorization: Bearer <token>' or as 'x-api-key'.",
        401,
        code="invalid_proxy_token",
    )


def too_large(size: int, limit: int) -> Reply:
    return error_reply(
        f"Request body is {size} bytes; this proxy accepts at most {limit} bytes (LLM_MAX_REQUEST_BYTES).",
        413,
        code="request_too_large",
    )


def _describe(e: Exception, timeout: float) -> str:
    if isinstance(e, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(e, UpstreamError):
        return e.message
    return (str(e) or type(e).__name__).splitlines()[0][:200]


def _loads(body: bytes) -> Any:
    try:
        return json_codec.loads(body)
    except (UnicodeDecodeError, json_codec.JSONDecodeError):
        return None


_dumps = json_codec.dumps


__all__ = ["PROXY_OWNER", "VERSION", "ProxyService", "Reply", "route"]

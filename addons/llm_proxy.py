"""llm-intercept: the mitmproxy addon. Run with `mitmdump -s addons/llm_proxy.py` (or ./run_proxy.sh).

Thin glue: options in, flows <-> ProxyService out. The work lives in plain modules beside this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import re
import sys
import typing
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

# mitmproxy puts only this file's folder on sys.path; the project root holds the `addons` package.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from mitmproxy import command, connection, ctx, exceptions, http  # noqa: E402
from mitmproxy.proxy.mode_specs import ProxyMode, ReverseMode  # noqa: E402
from mitmproxy.proxy.server_hooks import ServerConnectionHookData  # noqa: E402

from addons import flowview  # noqa: E402
from addons.backends.base import Backend, UpstreamCall  # noqa: E402
from addons.backends.gemini import GeminiBackend  # noqa: E402
from addons.backends.openrouter import OpenRouterBackend  # noqa: E402
from addons.logredact import install_log_redaction, redact_flow_dump  # noqa: E402
from addons.mitm import edge  # noqa: E402
from addons.relay import StreamRelay  # noqa: E402
from addons.service import SERVED, VERSION, ProxyService, Reply, route, too_large, unauthorised  # noqa: E402
from addons.settings import (  # noqa: E402
    FIELDS,
    Settings,
    SettingsError,
    custom_base_urls,
    load_settings,
    read_environment,
    read_yaml,
)
from addons.upstream import UpstreamClient  # noqa: E402
from translators import json_codec  # noqa: E402
from translators.assemble import assemble_completion  # noqa: E402

log = logging.getLogger("llm_intercept")
# mitmproxy compares option types with typing.Optional[str] itself; `str | None` is not recognised everywhere.
OptStr = typing.Optional[str]  # noqa: UP045


class LLMProxy:
    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.service: ProxyService | None = None
        self.relay = StreamRelay()
        self.edge = edge.Edge(self.relay)
        self._streams: dict[str, Reply] = {}  # flow id -> streamed reply, until its response hook
        # client connection id -> the request hooks of its flows still waiting on the service
        self._waiting: dict[str, set[asyncio.Timeout]] = {}
        self._startup_values: dict[str, str | None] = {}  # start-up-only options, as the proxy started

    # -- options -----------------------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        # Typed as strings on purpose: an unparseable value for a script option makes mitmproxy
        # unload the script silently; we parse and reject bad values loudly in configure().
        for spec in FIELDS.values():
            env = f" (env {spec.env})" if spec.env else ""
            loader.add_option(spec.option, OptStr, None, spec.help + env)
        loader.add_option("llm_config", OptStr, None, "YAML settings file (default: mitm_config.yaml).")
        loader.add_option("llm_env_file", OptStr, None, "dotenv file (default: .env next to run_proxy.sh).")
        # Everything this process writes (history and its -wal/-shm, state, --save flows) holds prompts:
        # owner-only from the moment it exists, which no chmod after the fact can promise.
        os.umask(0o077)
        # Except mitmproxy's --save file, opened before any script loads (run_proxy.sh sets the umask
        # before that): no flow is in it yet, so tightening it now still comes before the first prompt.
        saving = getattr(ctx.master.addons.get("save"), "current_path", None)
        if saving:
            with contextlib.suppress(OSError):  # gone or not ours: nothing to tighten
                os.chmod(saving, 0o600)

    def _refuse_startup_only_changes(self, updated: set[str]) -> set[str]:
        """Base URLs decide where every key goes: fixed once the proxy runs, whoever changes options later
        (mitmweb's `PUT /options`, the console, `set`). Returns `updated` less the unchanged ones."""
        values = {name: getattr(ctx.options, name) for name in _STARTUP_ONLY}
        if self.settings is None:  # starting: (re)recorded until a configuration succeeds
            self._startup_values = values
            return updated
        changed = [f"{n}={v!r}" for n, v in sorted(values.items()) if v != self._startup_values[n]]
        if changed:
            log.error(_STARTUP_ONLY_CHANGE, ", ".join(changed))
            raise exceptions.OptionsError(_STARTUP_ONLY_CHANGE % ", ".join(changed))
        # mitmproxy's rollback after a refusal re-sends the same names with their old values: no rebuild.
        return updated - _STARTUP_ONLY

    def configure(self, updated: set[str]) -> None:
        updated = self._refuse_startup_only_changes(updated)
        ours = {s.option for s in FIELDS.values()} | {"llm_config", "llm_env_file"}
        if self.settings is not None and not (updated & ours):
            return
        try:
            env = read_environment(ctx.options.llm_env_file)
            yaml_data = read_yaml(ctx.options.llm_config)
            cli = {s.option: getattr(ctx.options, s.option) for s in FIELDS.values()}
            settings = load_settings(cli, env, yaml_data, ctx.options.llm_config or "mitm_config.yaml")
            secrets = [secret for _, secret in settings.all_secrets()]
            install_log_redaction(secrets)
            # mitmdump's flow dump prints headers and bodies (flow_detail >= 2) outside logging.
            redact_flow_dump(ctx.master.addons.get("dumper"), secrets)
            backends: dict[str, Backend] = {
                "openrouter": OpenRouterBackend(
                    settings.openrouter_api_base_url, settings.app_site_url, settings.app_x_title
                ),
                "gemini": GeminiBackend(settings.gemini_api_base_url),
            }
            service = ProxyService(settings, backends, UpstreamClient(settings.proxy_timeout), self.service)
        except SettingsError as e:
            raise exceptions.OptionsError(f"llm-intercept: {e}") from None
        # `-n` (replay, no server) runs no proxy server; mitmweb's UI listens all the same.
        hosts = [ctx.options.listen_host] if ctx.options.server else []
        if exposed := _exposed_without_token(settings, [*hosts, *_web_hosts()]):
            # At start-up this exits mitmdump/mitmweb with status 1 before anything listens for long.
            raise exceptions.OptionsError(_EXPOSED % ", ".join(exposed))
        old = self.service
        self.settings, self.service = settings, service
        if old is None and (custom := custom_base_urls(settings)):  # base URLs are start-up only
            log.warning(_CUSTOM_URLS, "\n".join(f"  {line}" for line in custom))
        if old is not None:
            self.service.history.start()
            _spawn(_retire(self.relay, old))
            _spawn(self._start_discovery())

    # -- lifecycle (sync on purpose: async running/done break `-s` hot reload) ---------------------

    def running(self) -> None:
        assert self.service and self.settings
        # Lazy: never open a connection to a reverse target / api.openai.com we will not use.
        ctx.options.update(connection_strategy="lazy")
        if not self._bind_is_safe():
            return
        self.edge.keep_client_host(ProxyMode.parse(m) for m in ctx.options.mode)
        allow = intercept_only_patterns(ctx.options.mode, self.settings.intercept_hosts)
        if allow and not ctx.options.allow_hosts and not ctx.options.ignore_hosts:
            # Explicit/transparent modes: TLS-intercept only the OpenAI hosts; all else passes untouched.
            ctx.options.update(allow_hosts=allow)
        # Deferred options left after the script loaded are names nobody declared: typos.
        unknown = list(ctx.options.deferred)
        if unknown:
            log.error("unknown option(s) given with --set: %s (typo?)", ", ".join(sorted(unknown)))
        self.service.history.start()
        _spawn(self._start_discovery())

    def _bind_is_safe(self) -> bool:
        """Per-mode listen addresses (`--mode regular@0.0.0.0:8080`) are only known once listening."""
        assert self.settings
        hosts = [a[0] for a in ctx.master.addons.get("proxyserver").listen_addrs()]
        if not (exposed := _exposed_without_token(self.settings, [*hosts, *_web_hosts()])):
            return True
        log.error(_EXPOSED, ", ".join(exposed))
        ctx.master.shutdown()
        return False

    # -- commands for the console and mitmweb's command bar ----------------------------------------

    @command.command("llm.status")
    def status(self) -> str:
        """Backends, keys by name with cooldowns, routes, sessions."""
        return self.service.status_text() if self.service else "llm-intercept is not configured"

    @command.command("llm.sessions")
    def sessions(self) -> str:
        """Every live session and its overrides."""
        return self.service.sessions_text() if self.service else ""

    @command.command("llm.routes")
    def routes(self) -> str:
        """Every failover route with its policy and elements."""
        return self.service.routes_text() if self.service else ""

    async def _start_discovery(self) -> None:
        assert self.service and self.settings
        if not self.relay.port:
            await self.relay.start()
        await self.service.discover()
        rt = self.service.runtime
        keys = ", ".join(f"{b}: {self.service.router.count(b)} key(s)" for b in self.service.backends)
        log.info(
            "llm-intercept %s ready: default backend %s; %s; command prefix %s; redaction %s; interactive %s",
            VERSION,
            rt.default_backend,
            keys,
            self.settings.command_prefix,
            "on" if rt.redact else "off",
            "on" if rt.interactive else "off",
        )

    def done(self) -> None:
        # Also runs on `-s` hot reload: streams in flight keep their upstream client until they end.
        self.relay.close()
        if self.service:
            # On shutdown the retiring task may never run: write what history holds now.
            self.service.history.flush()
            _spawn(_retire(self.relay, self.service))

    # -- flows -------------------------------------------------------------------------------------

    def _ours(self, flow: http.HTTPFlow) -> bool:
        if route(flow.request.method, edge.canonical_path(flow.request.path)) is None:
            return False
        if isinstance(flow.client_conn.proxy_mode, ReverseMode) or flow.is_replay == "request":
            return True
        assert self.settings
        return flow.request.pretty_host.lower() in self.settings.intercept_hosts

    async def http_connect(self, flow: http.HTTPFlow) -> None:
        if self.settings is None:
            return
        refusal = self.edge.credentials(flow, edge.token(self.settings))
        if refusal is None and flow.request.host.lower() not in self.settings.intercept_hosts:
            refusal = await self.edge.destination(flow.request.host, flow.request.port)
        if refusal is not None:
            self.edge.refuse(flow, *edge.render(refusal))

    async def server_connect(self, data: ServerConnectionHookData) -> None:
        if self.settings is not None:
            await self.edge.server_connect(data, edge.token(self.settings))

    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        """Everything decided on the head is decided here, before mitmproxy reads the body."""
        if self.settings is None or self.service is None or flow.is_replay:
            return
        ours = self._ours(flow)
        answer = await self.edge.screen(flow, self.settings, ours)
        if answer is None:
            reply = self._admit(flow, ours)
            answer = (reply.status, reply.body, reply.headers) if reply else None
        if answer is None and not ours:
            answer = self.edge.forward(flow, self.settings, SERVED)
        if answer is not None:
            self.edge.refuse(flow, *answer)

    def _admit(self, flow: http.HTTPFlow, ours: bool) -> Reply | None:
        """The access token (the LLM paths; beyond loopback in reverse mode, every path) and the body size."""
        assert self.settings and self.service
        req, mode = flow.request, flow.client_conn.proxy_mode
        guarded = ours or (isinstance(mode, ReverseMode) and edge.exposed(mode, ctx.options.listen_host))
        if guarded and not self.service.authorised(req.headers):
            return unauthorised()
        if not ours:
            return None
        size = edge.declared_length(req.method, req.headers, req.http_version.startswith("HTTP/1"))
        if size is None:
            return Reply(*edge.render(edge.length_required()))
        limit = self.settings.max_request_bytes
        return too_large(size, limit) if size > limit else None

    async def request(self, flow: http.HTTPFlow) -> None:
        # A request refused on its head has its response, or now points at the relay: not ours either way.
        if flow.response is not None or not self._ours(flow) or self.service is None:
            return
        flow.marked = flowview.MARK
        req = flow.request
        body = req.raw_content or b""
        query = req.path.partition("?")[2]
        path = edge.canonical_path(req.path) + (f"?{query}" if query else "")
        try:
            async with self._until_client_leaves(flow):
                reply = await self.service.handle(req.method, path, req.headers, body)
        except TimeoutError:  # the scope's: handle() turns every failure of its own into a reply
            log.info("%s %s: client hung up before the answer; upstream call dropped", req.method, req.path)
            self._show_client_request(flow, body)
            if flow.killable:  # so that mitmproxy never forwards the request itself
                flow.kill()
            return
        if reply is None:
            return
        self._show_info(flow, reply)
        self._show_client_request(flow, body)
        if reply.stream is None:
            _apply_complete(flow, reply)
            if reply.upstream:
                self._show_upstream(flow, reply.upstream)
            return
        self._streams[flow.id] = reply
        req.url = self.relay.register(reply.stream)
        req.content = b""

    @contextlib.asynccontextmanager
    async def _until_client_leaves(self, flow: http.HTTPFlow) -> AsyncIterator[None]:
        """Cancels the block (raising TimeoutError) when the flow's client disconnects: mitmproxy does not
        cancel a request hook whose client has gone, so the upstream call would run on for nobody."""
        if flow.is_replay:  # no client to leave
            yield
            return
        client = flow.client_conn
        async with asyncio.timeout(None) as scope:
            hooks = self._waiting.setdefault(client.id, set())
            hooks.add(scope)
            if not client.connected:  # it left before the hook started: its client_disconnected has run
                scope.reschedule(0)
            try:
                yield
            finally:
                hooks.discard(scope)
                if not hooks:
                    self._waiting.pop(client.id, None)

    def client_disconnected(self, client: connection.Client) -> None:
        self.edge.forget(client)
        for scope in self._waiting.pop(client.id, ()):
            scope.reschedule(0)

    def _show_client_request(self, flow: http.HTTPFlow, body: bytes) -> None:
        assert self.service
        req = flow.request
        flow.metadata["llm_client_request"] = flowview.client_request(
            req.method, req.pretty_url, req.headers, body, self.service.redactor
        )
        # The flow itself is never forwarded as is: mask the client's credentials in what mitmweb shows.
        for name in {k for k, v in req.headers.items() if flowview.masks(k, v, self.service.redactor)}:
            req.headers[name] = flowview.MASK
        req.path = flowview.shown_url(req.path, self.service.redactor)

    def _show_info(self, flow: http.HTTPFlow, reply: Reply) -> None:
        """Metadata and comment, redacted whatever the redaction setting says (which decides only what
        is sent upstream): a model name or a command argument may hold a key."""
        assert self.service
        flow.metadata["llm"] = self.service.redactor.redact_json(reply.info)
        flow.comment = self.service.redactor.redact(flowview.comment(reply.info))

    def _show_upstream(self, flow: http.HTTPFlow, call: UpstreamCall) -> None:
        """Make the flow show the request that really left the proxy: key masked, and the body redacted
        even when redaction is off (a prompt that was sent with a key is not saved or shown with it)."""
        assert self.service
        redactor = self.service.redactor

        def _hidden(name: str, value: str) -> bool:
            return name.lower() in call.secret_headers or flowview.masks(name, value, redactor)

        flow.request.method = call.method
        flow.request.url = redactor.redact(call.url)
        flow.request.headers = http.Headers(
            [(k.encode(), (flowview.MASK if _hidden(k, v) else v).encode()) for k, v in call.headers.items()]
        )
        flow.request.content = redactor.redact_bytes(call.body)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self.edge.response_headers(flow)
        if flow.id in self._streams and flow.response is not None:
            flow.response.stream = True
            if _wants_close(flow):
                flow.response.headers["connection"] = "close"
            if flow.request.http_version != "HTTP/1.1":
                flow.response.headers.pop("transfer-encoding", None)

    def response(self, flow: http.HTTPFlow) -> None:
        reply = self._streams.pop(flow.id, None)
        if reply is None or flow.response is None:
            return
        # mitmproxy keeps no streamed body: show what the stream amounted to, and what really left.
        assert reply.transcript is not None
        sent = reply.transcript.sent
        completion = reply.transcript.completion or assemble_completion(bytes(sent))
        assert self.service
        flow.response.content = json_codec.dumps_pretty(self.service.redactor.redact_json(completion))
        flow.metadata["llm_stream_bytes"] = len(sent)
        if reply.upstream:
            self._show_upstream(flow, reply.upstream)
        self._show_info(flow, reply)

    def error(self, flow: http.HTTPFlow) -> None:
        self.edge.discard(flow)
        # A stream the relay already serves is closed by the relay itself when the client goes away.
        if self._streams.pop(flow.id, None) is not None:
            self.relay.discard(flow.request.url)


_CUSTOM_URLS = (
    "\n" + "!" * 100 + "\nllm-intercept: a provider base URL is not the provider's own:\n%s\n"
    "Every API key of that provider is sent there, starting now with model discovery. If you did not set "
    "this\n(a .env or mitm_config.yaml you did not write?), stop the proxy now.\n" + "!" * 100
)
# Options that decide where keys are sent (base URLs, and the files they may come from): start-up only.
_STARTUP_ONLY = frozenset(
    {s.option for s in FIELDS.values() if s.option.endswith("_base_url")} | {"llm_config", "llm_env_file"}
)
_STARTUP_ONLY_CHANGE = (
    "llm-intercept: refused a runtime change of %s: provider base URLs (and the files they come from) are "
    "read at start-up only, so no key can be redirected; restart the proxy to change them."
)
_EXPOSED = (
    "llm-intercept: refusing to listen on %s without an access token: anyone who can reach it could spend "
    "your API keys. Set PROXY_API_KEY (clients send it as a Bearer token), bind 127.0.0.1 "
    "(--listen-host 127.0.0.1; mitmweb: --web-host 127.0.0.1), or set allow_remote_without_token=true."
)


def _exposed_without_token(settings: Settings, hosts: Sequence[str]) -> list[str]:
    """The listening addresses beyond loopback that nothing guards ("" = every interface, shown as *)."""
    if settings.proxy_api_key or settings.allow_remote_without_token:
        return []
    return list(dict.fromkeys(h or "*" for h in hosts if not _is_loopback(h)))


def _web_hosts() -> list[str]:
    """mitmweb's UI address: the option exists only under mitmweb."""
    return [ctx.options.web_host] if "web_host" in ctx.options else []


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def intercept_only_patterns(modes: Sequence[str], hosts: Sequence[str]) -> list[str]:
    """allow_hosts for proxy modes: the OpenAI hosts plus every reverse target (none if reverse only)."""
    parsed = [ProxyMode.parse(m) for m in modes]
    if all(isinstance(m, ReverseMode) for m in parsed):
        return []
    patterns = [rf"^{re.escape(h)}(:\d+)?$" for h in hosts]
    patterns += [rf"^{re.escape(m.address[0])}:{m.address[1]}$" for m in parsed if isinstance(m, ReverseMode)]
    return list(dict.fromkeys(patterns))


def _apply_complete(flow: http.HTTPFlow, reply: Reply) -> None:
    close = _wants_close(flow)  # read before the shown request replaces the client's headers
    # A HEAD answer carries headers only (HTTP forbids a body; clients would misread the next response).
    body = b"" if flow.request.method == "HEAD" else reply.body
    flow.response = http.Response.make(reply.status, body, reply.headers)
    if close:
        flow.response.headers["connection"] = "close"


def _wants_close(flow: http.HTTPFlow) -> bool:
    """The client asked to close after this response: answering `Connection: close` makes mitmproxy close."""
    return "close" in flow.request.headers.get("connection", "").lower()


async def _retire(relay: StreamRelay, service: ProxyService) -> None:
    """Release a replaced service once the streams it serves are over (bounded by the upstream timeout)."""
    await relay.wait_idle(service.settings.proxy_timeout)
    await service.upstream.aclose()
    await asyncio.to_thread(service.history.close)


_tasks: set[asyncio.Task[Any]] = set()


def _spawn(coro: Any) -> None:
    """Fire-and-forget on mitmproxy's loop, keeping a reference so the task is not collected."""
    task = asyncio.get_running_loop().create_task(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


addons = [LLMProxy()]

"""llm-intercept: the mitmproxy addon. Run with `mitmdump -s addons/llm_proxy.py` (or ./run_proxy.sh).

Thin glue: options in, flows <-> ProxyService out. The work lives in plain modules beside this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
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

from addons import flowview  # noqa: E402
from addons.backends.base import Backend, UpstreamCall  # noqa: E402
from addons.backends.gemini import GeminiBackend  # noqa: E402
from addons.backends.openrouter import OpenRouterBackend  # noqa: E402
from addons.logredact import install_log_redaction  # noqa: E402
from addons.relay import StreamRelay  # noqa: E402
from addons.service import VERSION, ProxyService, Reply, route, too_large  # noqa: E402
from addons.settings import FIELDS, Settings, SettingsError, load_settings, read_environment, read_yaml  # noqa: E402
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
        self._streams: dict[str, Reply] = {}  # flow id -> streamed reply, until its response hook
        # client connection id -> the request hooks of its flows still waiting on the service
        self._waiting: dict[str, set[asyncio.Timeout]] = {}

    # -- options -----------------------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        # Typed as strings on purpose: an unparseable value for a script option makes mitmproxy
        # unload the script silently; we parse and reject bad values loudly in configure().
        for spec in FIELDS.values():
            env = f" (env {spec.env})" if spec.env else ""
            loader.add_option(spec.option, OptStr, None, spec.help + env)
        loader.add_option("llm_config", OptStr, None, "YAML settings file (default: mitm_config.yaml).")
        loader.add_option("llm_env_file", OptStr, None, "dotenv file (default: ./.env).")

    def configure(self, updated: set[str]) -> None:
        ours = {s.option for s in FIELDS.values()} | {"llm_config", "llm_env_file"}
        if self.settings is not None and not (updated & ours):
            return
        try:
            env = read_environment(ctx.options.llm_env_file)
            yaml_data = read_yaml(ctx.options.llm_config)
            cli = {s.option: getattr(ctx.options, s.option) for s in FIELDS.values()}
            settings = load_settings(cli, env, yaml_data, ctx.options.llm_config or "mitm_config.yaml")
            install_log_redaction([secret for _, secret in settings.all_secrets()])
            backends: dict[str, Backend] = {
                "openrouter": OpenRouterBackend(
                    settings.openrouter_api_base_url, settings.app_site_url, settings.app_x_title
                ),
                "gemini": GeminiBackend(settings.gemini_api_base_url),
            }
            service = ProxyService(settings, backends, UpstreamClient(settings.proxy_timeout))
        except SettingsError as e:
            raise exceptions.OptionsError(f"llm-intercept: {e}") from None
        # `-n` (replay, no server) listens nowhere.
        if ctx.options.server and _exposed_without_token(settings, [ctx.options.listen_host]):
            # At start-up this exits mitmdump with status 1 before anything listens for long.
            raise exceptions.OptionsError(_EXPOSED % (ctx.options.listen_host or "*"))
        old = self.service
        self.settings, self.service = settings, service
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
        if not _exposed_without_token(self.settings, hosts):
            return True
        log.error(_EXPOSED, ", ".join(h for h in hosts if not _is_loopback(h)))
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
        if route(flow.request.method, flow.request.path) is None:
            return False
        if isinstance(flow.client_conn.proxy_mode, ReverseMode) or flow.is_replay == "request":
            return True
        assert self.settings
        return flow.request.pretty_host.lower() in self.settings.intercept_hosts

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if not self._ours(flow) or self.settings is None:
            return
        # Refuse oversized bodies before mitmproxy buffers them.
        size = flow.request.headers.get("content-length", "")
        if size.isdigit() and int(size) > self.settings.max_request_bytes:
            _apply_complete(flow, too_large(int(size), self.settings.max_request_bytes))

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or not self._ours(flow) or self.service is None:
            return
        flow.marked = flowview.MARK
        req = flow.request
        body = req.raw_content or b""
        try:
            async with self._until_client_leaves(flow):
                reply = await self.service.handle(req.method, req.path, req.headers, body)
        except TimeoutError:  # the scope's: handle() turns every failure of its own into a reply
            log.info("%s %s: client hung up before the answer; upstream call dropped", req.method, req.path)
            self._show_client_request(flow, body)
            if flow.killable:  # so that mitmproxy never forwards the request itself
                flow.kill()
            return
        if reply is None:
            return
        flow.metadata["llm"] = reply.info
        self._show_client_request(flow, body)
        if reply.stream is None:
            _apply_complete(flow, reply)
            flow.comment = flowview.comment(reply.info)
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
        for scope in self._waiting.pop(client.id, ()):
            scope.reschedule(0)

    def _show_client_request(self, flow: http.HTTPFlow, body: bytes) -> None:
        assert self.service
        req = flow.request
        flow.metadata["llm_client_request"] = flowview.client_request(
            req.method, req.pretty_url, req.headers, body, self.service.redactor
        )
        # The flow itself is never forwarded as is: mask the client's credentials in what mitmweb shows.
        for name in flowview.SECRET_HEADERS & {k.lower() for k in req.headers}:
            req.headers[name] = flowview.MASK

    def responseheaders(self, flow: http.HTTPFlow) -> None:
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
        flow.response.content = json_codec.dumps_pretty(completion)
        flow.metadata["llm_stream_bytes"] = len(sent)
        if reply.upstream:
            _show_upstream(flow, reply.upstream)
        flow.comment = flowview.comment(reply.info)

    def error(self, flow: http.HTTPFlow) -> None:
        # A stream the relay already serves is closed by the relay itself when the client goes away.
        if self._streams.pop(flow.id, None) is not None:
            self.relay.discard(flow.request.url)


_EXPOSED = (
    "llm-intercept: refusing to listen on %s without an access token: anyone who can reach it could spend "
    "your API keys. Set PROXY_API_KEY (clients send it as a Bearer token), bind 127.0.0.1 "
    "(--listen-host 127.0.0.1), or set allow_remote_without_token=true."
)


def _exposed_without_token(settings: Settings, hosts: Sequence[str]) -> bool:
    if settings.proxy_api_key or settings.allow_remote_without_token:
        return False
    return any(not _is_loopback(h) for h in hosts)


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
    if reply.upstream:
        _show_upstream(flow, reply.upstream)
    # A HEAD answer carries headers only (HTTP forbids a body; clients would misread the next response).
    body = b"" if flow.request.method == "HEAD" else reply.body
    flow.response = http.Response.make(reply.status, body, reply.headers)
    if close:
        flow.response.headers["connection"] = "close"


def _wants_close(flow: http.HTTPFlow) -> bool:
    """The client asked to close after this response: answering `Connection: close` makes mitmproxy close."""
    return "close" in flow.request.headers.get("connection", "").lower()


def _show_upstream(flow: http.HTTPFlow, call: UpstreamCall) -> None:
    """Make the flow show the request that really left the proxy, with its key masked."""
    flow.request.method = call.method
    flow.request.url = call.url
    flow.request.headers = http.Headers(
        [
            (k.encode(), (flowview.MASK if k.lower() in call.secret_headers else v).encode())
            for k, v in call.headers.items()
        ]
    )
    flow.request.content = call.body


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

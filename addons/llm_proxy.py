"""llm-intercept: the mitmproxy addon. Run with `mitmdump -s addons/llm_proxy.py` (or ./run_proxy.sh).

Thin glue: options in, flows <-> the pipeline out. Each hook guards and delegates: what it decides lives
in `addons/mitm/` (flows, the edge policy, hang-ups, start-up), what a call does in `addons/pipeline/`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import typing
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

# mitmproxy puts only this file's folder on sys.path; the project root holds the `addons` package.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from mitmproxy import command, connection, ctx, exceptions, http  # noqa: E402
from mitmproxy.proxy.mode_specs import ProxyMode, ReverseMode  # noqa: E402
from mitmproxy.proxy.server_hooks import ServerConnectionHookData  # noqa: E402

from addons import app  # noqa: E402
from addons.frontends.base import Reply  # noqa: E402
from addons.frontends.openai_chat import internal_error, too_large, unauthorised  # noqa: E402
from addons.metrics.classify import CLIENT_CLOSED  # noqa: E402
from addons.metrics.observe import InFlight, observe  # noqa: E402
from addons.mitm import edge, exposure, flows, flowview, startup  # noqa: E402
from addons.mitm.hangups import HangupWatch  # noqa: E402
from addons.mitm.relay import StreamRelay  # noqa: E402
from addons.pipeline import discovery, dispatch  # noqa: E402
from addons.pipeline import status as texts  # noqa: E402
from addons.pipeline.core import Core  # noqa: E402
from addons.security import access  # noqa: E402
from addons.security.logredact import install_log_redaction, redact_flow_dump  # noqa: E402
from addons.security.paths import canonical_path  # noqa: E402
from addons.settings import FIELDS, Settings, SettingsError, load_settings, read_environment, read_yaml  # noqa: E402
from translators import json_codec  # noqa: E402
from translators.openai.assemble import assemble_completion  # noqa: E402

log = logging.getLogger("llm_intercept")
# mitmproxy compares option types with typing.Optional[str] itself; `str | None` is not recognised everywhere.
OptStr = typing.Optional[str]  # noqa: UP045


class LLMProxy:
    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.core: Core | None = None
        self.relay = StreamRelay()
        self.edge = edge.Edge(self.relay)
        self.hangups = HangupWatch()
        self.startup_only = startup.StartupOnly()
        self._streams: dict[str, Reply] = {}  # flow id -> streamed reply, until its response hook
        self.inflight = InFlight()  # requests of ours until they end, for the metrics

    # -- options -----------------------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        # Typed as strings on purpose: an unparseable value for a script option makes mitmproxy
        # unload the script silently; we parse and reject bad values loudly in configure().
        for spec in FIELDS.values():
            env = f" (env {spec.env})" if spec.env else ""
            loader.add_option(spec.option, OptStr, None, spec.help + env)
        loader.add_option("llm_config", OptStr, None, "YAML settings file (default: mitm_config.yaml).")
        loader.add_option("llm_env_file", OptStr, None, "dotenv file (default: .env next to run_proxy.sh).")
        startup.owner_only_files()

    def configure(self, updated: set[str]) -> None:
        updated = self.startup_only.check(updated, started=self.settings is not None)
        ours = {s.option for s in FIELDS.values()} | {"llm_config", "llm_env_file"}
        if self.settings is not None and not (updated & ours):
            if "proxyauth" in updated:  # mitmproxy's own option, set at runtime
                edge.refuse_proxyauth(self.settings)
            return
        try:
            env = read_environment(ctx.options.llm_env_file)
            yaml_data = read_yaml(ctx.options.llm_config)
            cli = {s.option: getattr(ctx.options, s.option) for s in FIELDS.values()}
            settings = load_settings(cli, env, yaml_data, ctx.options.llm_config or "mitm_config.yaml")
            edge.refuse_proxyauth(settings)
            secrets = [secret for _, secret in settings.all_secrets()]
            install_log_redaction(secrets)
            # mitmdump's flow dump prints headers and bodies (flow_detail >= 2) outside logging.
            redact_flow_dump(ctx.master.addons.get("dumper"), secrets)
            core = app.build(settings, self.core)
        except SettingsError as e:
            raise exceptions.OptionsError(f"llm-intercept: {e}") from None
        # `-n` (replay, no server) runs no proxy server; mitmweb's UI listens all the same.
        hosts = [ctx.options.listen_host] if ctx.options.server else []
        if exposed := exposure.exposed_without_token(settings, [*hosts, *exposure.web_hosts()]):
            # At start-up this exits mitmdump/mitmweb with status 1 before anything listens for long.
            raise exceptions.OptionsError(exposure.EXPOSED % ", ".join(exposed))
        # The shared stores are start-up only: their servers are asked once, and refuse the same way.
        if self.core is None and (refused := startup.shared_state_refusal(core.stores.shared)):
            raise exceptions.OptionsError(f"llm-intercept: {refused}")
        old = self.core
        self.settings, self.core = settings, core
        if old is None:  # base URLs are start-up only: announced once
            startup.announce_custom_base_urls(settings)
        else:
            core.stores.history.start()
            _spawn(_retire(self.relay, old))
            _spawn(self._start_discovery())

    # -- lifecycle (sync on purpose: async running/done break `-s` hot reload) ---------------------

    def running(self) -> None:
        assert self.core and self.settings
        # Lazy: never open a connection to a reverse target / api.openai.com we will not use.
        ctx.options.update(connection_strategy="lazy")
        if not self._bind_is_safe():
            return
        self.edge.keep_client_host(ProxyMode.parse(m) for m in ctx.options.mode)
        allow = exposure.intercept_only_patterns(ctx.options.mode, self.settings.intercept_hosts)
        if allow and not ctx.options.allow_hosts and not ctx.options.ignore_hosts:
            # Explicit/transparent modes: TLS-intercept only the OpenAI hosts; all else passes untouched.
            ctx.options.update(allow_hosts=allow)
        # Deferred options left after the script loaded are names nobody declared: typos.
        unknown = list(ctx.options.deferred)
        if unknown:
            log.error("unknown option(s) given with --set: %s (typo?)", ", ".join(sorted(unknown)))
        self.core.stores.history.start()
        _spawn(self._start_discovery())

    def _bind_is_safe(self) -> bool:
        """Per-mode listen addresses (`--mode regular@0.0.0.0:8080`) are only known once listening."""
        assert self.settings
        hosts = [a[0] for a in ctx.master.addons.get("proxyserver").listen_addrs()]
        if not (exposed := exposure.exposed_without_token(self.settings, [*hosts, *exposure.web_hosts()])):
            return True
        log.error(exposure.EXPOSED, ", ".join(exposed))
        ctx.master.shutdown()
        return False

    # -- commands for the console and mitmweb's command bar ----------------------------------------

    @command.command("llm.status")
    def status(self) -> str:
        """Backends, keys by name with cooldowns, routes, sessions."""
        return _at_once(texts.status_text(self.core)) if self.core else "llm-intercept is not configured"

    @command.command("llm.sessions")
    def sessions(self) -> str:
        """Every live session and its overrides."""
        return _at_once(texts.sessions_text(self.core)) if self.core else ""

    @command.command("llm.routes")
    def routes(self) -> str:
        """Every failover route with its policy and elements."""
        return _at_once(texts.routes_text(self.core)) if self.core else ""

    async def _start_discovery(self) -> None:
        assert self.core
        for server in self.core.stores.shared:  # the ready line comes with the shared state read
            await server.synchronise()
        if not self.relay.port:
            await self.relay.start()
        await discovery.discover(self.core)
        log.info(await texts.ready_line(self.core))

    def done(self) -> None:
        # Also runs on `-s` hot reload: streams in flight keep their upstream client until they end.
        self.relay.close()
        if self.core:
            # On shutdown the retiring task may never run: write what history holds now.
            self.core.stores.history.drain()
            _spawn(_retire(self.relay, self.core))

    # -- flows -------------------------------------------------------------------------------------

    def _ours(self, flow: http.HTTPFlow) -> bool:
        if dispatch.route(flow.request.method, canonical_path(flow.request.path)) is None:
            return False
        if isinstance(flow.client_conn.proxy_mode, ReverseMode) or flow.is_replay == "request":
            return True
        assert self.settings
        return flow.request.pretty_host.lower() in self.settings.intercept_hosts

    # An exception in a hook makes mitmproxy log it and carry on with the flow as it is: forwarded
    # untouched, token or not. So every hook that decides fails closed: a bug refuses the request.

    async def http_connect(self, flow: http.HTTPFlow) -> None:
        await _fail_closed(flow, self._connect)

    async def _connect(self, flow: http.HTTPFlow) -> None:
        if self.settings is None:
            return
        refusal = self.edge.credentials(flow, access.token(self.settings))
        if refusal is None and flow.request.host.lower() not in self.settings.intercept_hosts:
            refusal = await self.edge.destination(flow.request.host, flow.request.port)
        if refusal is not None:
            self.edge.refuse(flow, *edge.render(refusal))

    async def server_connect(self, data: ServerConnectionHookData) -> None:
        if self.settings is not None:
            await self.edge.server_connect(data, access.token(self.settings))

    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        await _fail_closed(flow, self._screen)

    async def _screen(self, flow: http.HTTPFlow) -> None:
        """Everything decided on the head is decided here, before mitmproxy reads the body."""
        if self.settings is None or self.core is None or flow.is_replay:
            return
        ours = self._ours(flow)
        if ours:
            self._begin(flow)
        answer = await self.edge.screen(flow, self.settings, ours)
        if answer is None:
            reply = self._admit(flow, ours)
            answer = (reply.status, reply.body, reply.headers) if reply else None
        if answer is None and not ours:
            answer = self.edge.forward(flow, self.settings, dispatch.SERVED)
        if answer is not None:
            self.edge.refuse(flow, *answer)

    def _admit(self, flow: http.HTTPFlow, ours: bool) -> Reply | None:
        """The access token (the LLM paths; beyond loopback in reverse mode, every path) and the body size."""
        assert self.settings and self.core
        req, mode = flow.request, flow.client_conn.proxy_mode
        guarded = ours or (isinstance(mode, ReverseMode) and edge.exposed(mode, ctx.options.listen_host))
        fe = dispatch.dialect(self.core, req.path)
        if guarded and not access.authorised(req.headers, access.token(self.settings)):
            return fe.error(unauthorised())
        if not ours:
            return None
        size = edge.declared_length(req.method, req.headers, req.http_version.startswith("HTTP/1"))
        if size is None:
            return Reply(*edge.render(edge.length_required()))
        limit = self.settings.max_request_bytes
        return fe.error(too_large(size, limit)) if size > limit else None

    async def request(self, flow: http.HTTPFlow) -> None:
        await _fail_closed(flow, self._serve)

    async def _serve(self, flow: http.HTTPFlow) -> None:
        # A request refused on its head has its response, or now points at the relay: not ours either way.
        if flow.response is not None or not self._ours(flow) or self.core is None:
            return
        core = self.core
        if flow.is_replay:  # replays skip the head's hook (_screen) but call providers all the same
            self._begin(flow)
        flow.marked = flowview.MARK
        req = flow.request
        body = req.raw_content or b""
        query = req.path.partition("?")[2]
        path = canonical_path(req.path) + (f"?{query}" if query else "")
        try:
            async with self.hangups.until_client_leaves(flow):
                reply = await dispatch.handle(core, req.method, path, req.headers, body)
        except TimeoutError:  # the scope's: handle() turns every failure of its own into a reply
            log.info("%s %s: client hung up before the answer; upstream call dropped", req.method, req.path)
            flows.show_client_request(flow, body, core.redactor)
            if flow.killable:  # so that mitmproxy never forwards the request itself
                flow.kill()
            return
        if reply is None:
            return
        self.inflight.answered(flow.id, reply)
        flows.show_record(flow, reply, core.redactor)
        flows.show_client_request(flow, body, core.redactor)
        if reply.stream is None:
            flows.apply_complete(flow, reply)
            if reply.upstream:
                flows.show_upstream(flow, reply.upstream, core.redactor)
            return
        self._streams[flow.id] = reply
        self.edge.to_relay(flow, reply.stream)
        req.content = b""

    def client_disconnected(self, client: connection.Client) -> None:
        self.edge.forget(client)
        self.hangups.client_disconnected(client)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self.edge.response_headers(flow)
        reply = self._streams.get(flow.id)
        if reply is not None and flow.response is not None:
            flow.response.stream = True
            # The relay answers with its own head: the reply's headers (x-llm-intercept-model, ...) join it.
            for name, value in reply.headers.items():
                flow.response.headers[name] = value
            if flows.wants_close(flow):
                flow.response.headers["connection"] = "close"
            if flow.request.http_version != "HTTP/1.1":
                flow.response.headers.pop("transfer-encoding", None)

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            self._ended(flow, flow.response.status_code, flow.response.timestamp_end or time.time())
        reply = self._streams.pop(flow.id, None)
        if reply is None or flow.response is None or self.core is None:
            return
        # mitmproxy keeps no streamed body: show what the stream amounted to, and what really left.
        assert reply.transcript is not None
        redactor = self.core.redactor
        sent = reply.transcript.sent
        # In the client's dialect where it is not chat (a Message, a Responses object).
        shown = reply.transcript.shown or reply.transcript.completion or assemble_completion(bytes(sent))
        flow.response.content = json_codec.dumps_pretty(redactor.redact_json(shown))
        flow.metadata["llm_stream_bytes"] = len(sent)
        if reply.upstream:
            flows.show_upstream(flow, reply.upstream, redactor)
        flows.show_record(flow, reply, redactor)

    def error(self, flow: http.HTTPFlow) -> None:
        self._ended(flow, CLIENT_CLOSED, time.time())
        self.edge.discard(flow)
        # A stream the relay already serves is closed by the relay itself when the client goes away.
        if self._streams.pop(flow.id, None) is not None:
            self.relay.discard(flow.request.url)

    # -- metrics: each request of ours once, at its single end (a response or an error hook) ----------

    def _begin(self, flow: http.HTTPFlow) -> None:
        endpoint = dispatch.route(flow.request.method, canonical_path(flow.request.path))
        if endpoint is not None and endpoint != "metrics":  # scrapes are not counted
            self.inflight.begin(flow.id, endpoint)

    def _ended(self, flow: http.HTTPFlow, status: int, at: float) -> None:
        done = self.inflight.end(flow.id, status, at - flow.request.timestamp_start)
        if done is not None and self.core is not None:
            observe(self.core.metrics, done)


async def _fail_closed(flow: http.HTTPFlow, step: Callable[[http.HTTPFlow], Awaitable[None]]) -> None:
    """Run a deciding hook's work; a bug in it refuses the request instead of letting it through."""
    try:
        await step(flow)
    except Exception:
        log.exception("internal error in %s; request refused", step.__name__)
        if flow.response is None and flow.live:
            flows.apply_complete(flow, internal_error())


async def _retire(relay: StreamRelay, core: Core) -> None:
    """Release a replaced core once the streams it serves are over (bounded by the upstream timeout)."""
    await relay.wait_idle(core.settings.proxy_timeout)
    await core.upstream.aclose()
    await asyncio.to_thread(core.stores.history.close)


def _at_once[T](coro: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never waits, for mitmproxy's synchronous commands: the stores this
    process builds answer without suspending. A store that must wait needs an async command instead."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("the state store did not answer at once")


_tasks: set[asyncio.Task[Any]] = set()


def _spawn(coro: Any) -> None:
    """Fire-and-forget on mitmproxy's loop, keeping a reference so the task is not collected."""
    task = asyncio.get_running_loop().create_task(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


addons = [LLMProxy()]

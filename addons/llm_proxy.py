"""llm-intercept: the mitmproxy addon. Run with `mitmdump -s addons/llm_proxy.py` (or ./run_proxy.sh).

Thin glue: options in, flows <-> the pipeline out. The work lives in plain modules beside this one.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import typing
from pathlib import Path
from typing import Any

# mitmproxy puts only this file's folder on sys.path; the project root holds the `addons` package.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from mitmproxy import command, connection, ctx, exceptions, http  # noqa: E402
from mitmproxy.proxy.mode_specs import ReverseMode  # noqa: E402

from addons import app  # noqa: E402
from addons.frontends.base import Reply  # noqa: E402
from addons.frontends.openai_chat import too_large  # noqa: E402
from addons.logredact import install_log_redaction  # noqa: E402
from addons.mitm import exposure, flows, flowview  # noqa: E402
from addons.mitm.hangups import HangupWatch  # noqa: E402
from addons.mitm.relay import StreamRelay  # noqa: E402
from addons.pipeline import discovery, dispatch  # noqa: E402
from addons.pipeline import status as texts  # noqa: E402
from addons.pipeline.core import Core  # noqa: E402
from addons.settings import FIELDS, Settings, SettingsError, load_settings, read_environment, read_yaml  # noqa: E402
from translators import json_codec  # noqa: E402
from translators.assemble import assemble_completion  # noqa: E402

log = logging.getLogger("llm_intercept")
# mitmproxy compares option types with typing.Optional[str] itself; `str | None` is not recognised everywhere.
OptStr = typing.Optional[str]  # noqa: UP045


class LLMProxy:
    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.core: Core | None = None
        self.relay = StreamRelay()
        self.hangups = HangupWatch()
        self._streams: dict[str, Reply] = {}  # flow id -> streamed reply, until its response hook

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
            core = app.build(settings)
        except SettingsError as e:
            raise exceptions.OptionsError(f"llm-intercept: {e}") from None
        # `-n` (replay, no server) listens nowhere.
        if ctx.options.server and exposure.exposed_without_token(settings, [ctx.options.listen_host]):
            # At start-up this exits mitmdump with status 1 before anything listens for long.
            raise exceptions.OptionsError(exposure.EXPOSED % (ctx.options.listen_host or "*"))
        old = self.core
        self.settings, self.core = settings, core
        if old is not None:
            core.history.start()
            _spawn(_retire(self.relay, old))
            _spawn(self._start_discovery())

    # -- lifecycle (sync on purpose: async running/done break `-s` hot reload) ---------------------

    def running(self) -> None:
        assert self.core and self.settings
        # Lazy: never open a connection to a reverse target / api.openai.com we will not use.
        ctx.options.update(connection_strategy="lazy")
        if not self._bind_is_safe():
            return
        allow = exposure.intercept_only_patterns(ctx.options.mode, self.settings.intercept_hosts)
        if allow and not ctx.options.allow_hosts and not ctx.options.ignore_hosts:
            # Explicit/transparent modes: TLS-intercept only the OpenAI hosts; all else passes untouched.
            ctx.options.update(allow_hosts=allow)
        # Deferred options left after the script loaded are names nobody declared: typos.
        unknown = list(ctx.options.deferred)
        if unknown:
            log.error("unknown option(s) given with --set: %s (typo?)", ", ".join(sorted(unknown)))
        self.core.history.start()
        _spawn(self._start_discovery())

    def _bind_is_safe(self) -> bool:
        """Per-mode listen addresses (`--mode regular@0.0.0.0:8080`) are only known once listening."""
        assert self.settings
        hosts = [a[0] for a in ctx.master.addons.get("proxyserver").listen_addrs()]
        if not exposure.exposed_without_token(self.settings, hosts):
            return True
        log.error(exposure.EXPOSED, ", ".join(h for h in hosts if not exposure.is_loopback(h)))
        ctx.master.shutdown()
        return False

    # -- commands for the console and mitmweb's command bar ----------------------------------------

    @command.command("llm.status")
    def status(self) -> str:
        """Backends, keys by name with cooldowns, routes, sessions."""
        return texts.status_text(self.core) if self.core else "llm-intercept is not configured"

    @command.command("llm.sessions")
    def sessions(self) -> str:
        """Every live session and its overrides."""
        return texts.sessions_text(self.core) if self.core else ""

    @command.command("llm.routes")
    def routes(self) -> str:
        """Every failover route with its policy and elements."""
        return texts.routes_text(self.core) if self.core else ""

    async def _start_discovery(self) -> None:
        assert self.core
        if not self.relay.port:
            await self.relay.start()
        await discovery.discover(self.core)
        log.info(texts.ready_line(self.core))

    def done(self) -> None:
        # Also runs on `-s` hot reload: streams in flight keep their upstream client until they end.
        self.relay.close()
        if self.core:
            # On shutdown the retiring task may never run: write what history holds now.
            self.core.history.flush()
            _spawn(_retire(self.relay, self.core))

    # -- flows -------------------------------------------------------------------------------------

    def _ours(self, flow: http.HTTPFlow) -> bool:
        if dispatch.route(flow.request.method, flow.request.path) is None:
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
            flows.apply_complete(flow, too_large(int(size), self.settings.max_request_bytes))

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or not self._ours(flow) or self.core is None:
            return
        core = self.core
        flow.marked = flowview.MARK
        req = flow.request
        body = req.raw_content or b""
        try:
            async with self.hangups.until_client_leaves(flow):
                reply = await dispatch.handle(core, req.method, req.path, req.headers, body)
        except TimeoutError:  # the scope's: handle() turns every failure of its own into a reply
            log.info("%s %s: client hung up before the answer; upstream call dropped", req.method, req.path)
            flows.show_client_request(flow, body, core.redactor)
            if flow.killable:  # so that mitmproxy never forwards the request itself
                flow.kill()
            return
        if reply is None:
            return
        flows.show_client_request(flow, body, core.redactor)
        if reply.stream is None:
            flows.apply_complete(flow, reply)
            flows.show_record(flow, reply)
            return
        flow.metadata["llm"] = reply.record.as_metadata() if reply.record else {}
        self._streams[flow.id] = reply
        req.url = self.relay.register(reply.stream)
        req.content = b""

    def client_disconnected(self, client: connection.Client) -> None:
        self.hangups.client_disconnected(client)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if flow.id in self._streams and flow.response is not None:
            flow.response.stream = True
            if flows.wants_close(flow):
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
            flows.show_upstream(flow, reply.upstream)
        flows.show_record(flow, reply)

    def error(self, flow: http.HTTPFlow) -> None:
        # A stream the relay already serves is closed by the relay itself when the client goes away.
        if self._streams.pop(flow.id, None) is not None:
            self.relay.discard(flow.request.url)


async def _retire(relay: StreamRelay, core: Core) -> None:
    """Release a replaced core once the streams it serves are over (bounded by the upstream timeout)."""
    await relay.wait_idle(core.settings.proxy_timeout)
    await core.upstream.aclose()
    await asyncio.to_thread(core.history.close)


_tasks: set[asyncio.Task[Any]] = set()


def _spawn(coro: Any) -> None:
    """Fire-and-forget on mitmproxy's loop, keeping a reference so the task is not collected."""
    task = asyncio.get_running_loop().create_task(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


addons = [LLMProxy()]

"""Replay saved LLM flows against another model and print both answers side by side.

    mitmdump -n -q -s addons/llm_proxy.py -s addons/replay.py \\
        --set llm_replay_file=flows.mitm --set llm_replay_model=gemini:gemini-2.5-flash

(or `./run_proxy.sh replay flows.mitm --model gemini:gemini-2.5-flash`). Requests are rebuilt from the
client's original request kept in each flow (commands stripped, keys already masked), sent through
mitmproxy's own client replay, answered by llm_proxy like any other request, and compared.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
import typing
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from mitmproxy import ctx, exceptions, http, io  # noqa: E402

from addons.backends.specs import EXAMPLE_MODEL  # noqa: E402
from addons.conversation.parser import scan_content  # noqa: E402
from addons.pipeline.dispatch import route  # noqa: E402

OptStr = typing.Optional[str]  # noqa: UP045  (mitmproxy compares option types with typing.Optional)
REPLAY_URL = "https://api.openai.com/v1/chat/completions"  # intercepted by llm_proxy, never contacted


class Replay:
    def __init__(self) -> None:
        self.pending: dict[str, http.HTTPFlow] = {}  # replay flow id -> original flow
        self.results: list[tuple[http.HTTPFlow, http.HTTPFlow]] = []

    def load(self, loader: Any) -> None:
        loader.add_option("llm_replay_file", OptStr, None, "Saved flows to replay (mitmproxy flow file).")
        loader.add_option("llm_replay_model", OptStr, None, f"Model to replay against, e.g. {EXAMPLE_MODEL}.")
        loader.add_option("llm_replay_session", OptStr, None, "Only replay this session's flows.")

    def running(self) -> None:
        path = ctx.options.llm_replay_file
        if not path:
            return
        try:
            with open(path, "rb") as f:
                originals = [fl for fl in io.FlowReader(f).stream() if _is_llm_chat(fl)]
        except (OSError, exceptions.FlowReadException) as e:
            _out(f"cannot read {path}: {e}")
            ctx.master.shutdown()
            return
        session = ctx.options.llm_replay_session
        if session:
            originals = [fl for fl in originals if fl.metadata["llm"].get("session") == session]
        if not originals:
            _out(f"no LLM chat flows to replay in {path}" + (f" for session {session}" if session else ""))
            ctx.master.shutdown()
            return
        # The replayed requests go through llm_proxy like any client's: they need its access token.
        proxy = ctx.master.addons.get("llmproxy")
        token = proxy.settings.proxy_api_key if proxy and proxy.settings else None
        replays = []
        for original in originals:
            replay = _rebuild(
                original,
                ctx.options.llm_replay_model,
                ctx.options.command_prefix or "!/",
                token.get_secret_value() if token else None,
            )
            self.pending[replay.id] = original
            replays.append(replay)
        _out(f"replaying {len(replays)} request(s) from {path}")
        ctx.master.commands.call("replay.client", replays)

    def response(self, flow: http.HTTPFlow) -> None:
        self._done(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._done(flow)

    def _done(self, flow: http.HTTPFlow) -> None:
        original = self.pending.pop(flow.id, None)
        if original is None:
            return
        self.results.append((original, flow))
        _out(compare(original, flow, len(self.results)))
        if not self.pending:
            _out(f"done: {len(self.results)} request(s) replayed")
            ctx.master.shutdown()


def _is_llm_chat(fl: Any) -> bool:
    """A chat completion llm_proxy answered; --save also keeps its model listings and history reads."""
    if not (isinstance(fl, http.HTTPFlow) and "llm" in fl.metadata):
        return False
    sent = fl.metadata.get("llm_client_request") or {}
    path = urlsplit(str(sent.get("url", ""))).path
    return route(str(sent.get("method", "")), path) == "chat"


def _rebuild(original: http.HTTPFlow, model: str | None, prefix: str, token: str | None) -> http.HTTPFlow:
    sent = original.metadata["llm_client_request"]
    body = json.loads(sent["body"])
    # Commands already did their work in the original session; replaying them could change the target.
    for msg in body.get("messages", []):
        if msg.get("role") == "user":
            msg["content"] = scan_content(msg.get("content"), prefix)[0]
    if model:
        body["model"] = model
    body["stream"] = False  # compare whole answers
    body.pop("stream_options", None)
    headers = {
        "content-type": "application/json",
        "x-session-id": f"replay-{original.metadata['llm'].get('session')}",
    }
    if token:
        headers["authorization"] = f"Bearer {token}"
    replay = original.copy()
    replay.request = http.Request.make("POST", REPLAY_URL, json.dumps(body).encode(), headers)
    replay.response = None
    replay.metadata = {"llm_replay_of": original.id}
    return replay


def _answer(fl: http.HTTPFlow) -> tuple[str, str, str, str]:
    """(who, text, tokens, latency) of a flow's answer."""
    info = fl.metadata.get("llm") or {}
    who = f"{info.get('backend', '?')}:{info.get('model', '?')}"
    if fl.response is None:
        return who, f"(no answer: {fl.error.msg if fl.error else 'unknown'})", "-", "-"
    try:
        data = json.loads(fl.response.content or b"{}")
    except ValueError:
        data = {}
    if "error" in data:
        text = f"(error {fl.response.status_code}: {data['error'].get('message')})"
    else:
        choice = (data.get("choices") or [{}])[0]
        msg = choice.get("message") or {}
        text = msg.get("content") or json.dumps(msg.get("tool_calls") or "")
    usage = data.get("usage") or {}
    tokens = f"{usage.get('prompt_tokens', '?')}+{usage.get('completion_tokens', '?')}" if usage else "-"
    latency = "-"
    if fl.response.timestamp_end and fl.request.timestamp_start:
        latency = f"{(fl.response.timestamp_end - fl.request.timestamp_start) * 1000:.0f} ms"
    return who, text, tokens, latency


def compare(original: http.HTTPFlow, replay: http.HTTPFlow, n: int) -> str:
    width = max(30, (shutil.get_terminal_size((120, 20)).columns - 3) // 2)
    left, right = _answer(original), _answer(replay)
    rows = [
        (f"original  {left[0]}", f"replay  {right[0]}"),
        (f"tokens {left[2]} · {left[3]}", f"tokens {right[2]} · {right[3]}"),
    ]
    a = textwrap.wrap(left[1], width) or [""]
    b = textwrap.wrap(right[1], width) or [""]
    rows += [(a[i] if i < len(a) else "", b[i] if i < len(b) else "") for i in range(max(len(a), len(b)))]
    line = "-" * width + "-+-" + "-" * width
    body = "\n".join(f"{x:<{width}} | {y}" for x, y in rows)
    return f"\n#{n} session {original.metadata['llm'].get('session')}\n{line}\n{body}\n{line}"


# Every control character but newline and tab: model output (or a doctored flow file) must not drive the
# terminal (set its title, clear it, write the clipboard with OSC 52).
_CONTROLS = dict.fromkeys(
    c for c in range(0x100) if unicodedata.category(chr(c)) == "Cc" and chr(c) not in "\n\t"
)


def _out(text: str) -> None:
    sys.stdout.write(text.translate(_CONTROLS) + "\n")
    sys.stdout.flush()


addons = [Replay()]

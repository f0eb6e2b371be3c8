"""The tool turn on the fake upstreams: scripting it, and checking what the CLI and the upstream saw.

Upstream call 1 answers with a call of the CLI's tool (Gemini: a functionCall with a thoughtSignature;
OpenRouter: tool_call deltas); call 2, which carries the tool's output, answers `tool results: ...`
quoting it. The CLI's printed answer must then hold MARKER, which only the command's output contains.
"""

from __future__ import annotations

import json
from typing import Any

from tests.agents.clis import CLIENT_KEY, MARKER
from tests.agents.run import Outcome
from tests.fakes import fake_gemini, fake_openrouter
from tests.fakes.fake_gemini import FakeGemini, Reply
from tests.fakes.fake_openrouter import ChatReply, FakeOpenRouter

BACKENDS = ("gemini", "openrouter")


def script(
    backend: str, tool: str, args: dict[str, Any], gemini: FakeGemini, openrouter: FakeOpenRouter
) -> None:
    if backend == "gemini":
        gemini.enqueue(Reply(tool_calls=[(tool, args)]), Reply(quote_tool_results=True))
    else:
        openrouter.enqueue(ChatReply(tool_calls=[(tool, args)]), ChatReply(quote_tool_results=True))


def check(
    outcome: Outcome,
    backend: str,
    tool: str,
    args: dict[str, Any],
    gemini: FakeGemini,
    openrouter: FakeOpenRouter,
) -> None:
    """The CLI finished with an answer quoting the tool's output, after exactly the two scripted calls;
    the tool was declared upstream with the arguments used; the client's key stayed with the proxy."""
    assert outcome.returncode == 0, outcome
    assert MARKER in outcome.stdout, outcome
    if backend == "gemini":
        bodies = [r.json() for r in gemini.generate_requests()]
        results = fake_gemini.tool_results(bodies[-1]) if bodies else []
        # The signature of the scripted call came back on it (the strict fake refuses the request else).
        assert gemini.signature_checks and all(c.ok for c in gemini.signature_checks), gemini.signature_checks
    else:
        bodies = [r.json() for r in openrouter.requests if r.path.endswith("/chat/completions")]
        results = fake_openrouter.tool_results(bodies[-1]) if bodies else []
    assert len(bodies) == 2, f"{len(bodies)} upstream calls\n{outcome}"
    assert MARKER not in json.dumps(bodies[0])
    assert any(MARKER in r for r in results), f"no tool result with {MARKER} upstream: {results}"
    assert set(args) <= set(declared(bodies[0], backend)[tool]), "the scripted arguments fit the tool"
    sent = [r for fake in (gemini, openrouter) for r in fake.requests]
    assert not [r.path for r in sent if CLIENT_KEY in json.dumps(r.headers) + r.body.decode(errors="replace")]


def declared(body: dict[str, Any], backend: str) -> dict[str, list[str]]:
    """Tool name -> its parameters' names, as the upstream request declares them."""
    if backend == "gemini":
        decls = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []]
        schemas = {d["name"]: d.get("parameters") or d.get("parametersJsonSchema") or {} for d in decls}
        return {name: list(schema.get("properties") or {}) for name, schema in schemas.items()}
    functions = [t["function"] for t in body.get("tools") or [] if t.get("type") == "function"]
    return {f["name"]: list((f.get("parameters") or {}).get("properties") or {}) for f in functions}

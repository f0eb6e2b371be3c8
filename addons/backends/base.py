"""What every backend provides.

Backends build upstream calls and translate answers; they never touch flows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from addons.upstream import Upstream, UpstreamCall


@dataclass(slots=True)
class Translated:
    """A provider answer in OpenAI shape."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class SavedCalls:
    """What backends keep about the tool calls they hand out, by the tool call id the client sees: opaque
    strings only the backend that wrote them reads (a thought signature, the provider's own call id).

    `known` is what the signature store held for the request's ids, read before the first attempt;
    `minted` is what answers added since the pipeline last stored it (the backend's translators write
    into this very dict, the pipeline empties it into the store)."""

    known: Mapping[str, str] = field(default_factory=dict)
    minted: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Failure:
    """What a failed attempt means for the next one."""

    retry: bool  # another key or model may succeed
    cooldown: float | None = None  # seconds, when the provider said how long
    rest: bool = False  # cool this (backend, model, key) down: for `cooldown` s, else the default
    retire: bool = False  # the key is unusable for every model (e.g. credits exhausted)
    reason: str = ""
    other_model: bool = False  # no key of this model can help (context too long): only another model


class StreamTranslator(Protocol):
    """Turns raw provider stream bytes into OpenAI SSE bytes, incrementally."""

    def feed(self, data: bytes) -> list[bytes]: ...

    def finish(self) -> list[bytes]: ...


class Backend(Protocol):
    name: str
    # Whether build_call reads `saved.known`: a request only then has its tool call ids looked up.
    reads_saved_calls: bool

    def build_call(
        self,
        request: dict[str, Any],
        model: str,
        key: str,
        stream: bool,
        project: str | None = None,
        saved: SavedCalls | None = None,
    ) -> UpstreamCall:
        """The upstream call for the internal chat `request`; `saved.known` completes the tool calls of
        its history. Raises RequestError for a request the provider cannot take."""
        ...

    def translate_response(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        model: str,
        saved: SavedCalls | None = None,
    ) -> Translated:
        """The answer in OpenAI's shape; what its tool calls leave to keep goes to `saved.minted`."""
        ...

    def failure(self, status: int, headers: Mapping[str, str], body: bytes) -> Failure: ...

    async def prepare(self, request: dict[str, Any]) -> dict[str, Any]:
        """The request as this backend's attempts should get it (Gemini: remote media whose type the URL
        does not tell, fetched and inlined), once per client request; `request` itself is left as is."""
        ...

    def request_notes(self, request: dict[str, Any], model: str) -> list[str]:
        """What build_call leaves out or moves for `model` so the provider does not refuse the request,
        one line each, for the flow comment."""
        ...

    def stream_translator(
        self, request: dict[str, Any], model: str, saved: SavedCalls | None = None
    ) -> StreamTranslator:
        """A translator for one stream; what its tool calls leave to keep goes to `saved.minted` by the
        time feed() returns the chunk that hands out their ids."""
        ...

    def count_call(self, request: dict[str, Any], model: str, key: str) -> UpstreamCall | None:
        """The provider's own token count of `request` as it would be sent; None when the provider has
        no such endpoint (the caller estimates locally). Raises RequestError like build_call."""
        ...

    def read_count(self, body: bytes) -> int | None:
        """Input tokens from a successful count_call answer; None when the body does not say."""
        ...

    def embeddings_call(self, request: dict[str, Any], model: str, key: str) -> UpstreamCall:
        """OpenAI's embeddings `request` for `model` as the provider takes it. Raises RequestError for an
        input the provider cannot embed."""
        ...

    def translate_embeddings(
        self, status: int, headers: Mapping[str, str], body: bytes, model: str, request: dict[str, Any]
    ) -> Translated:
        """The provider's answer to embeddings_call(request) in OpenAI's shape: an embeddings list, or an
        error as translate_response gives it. The caller checks that a 2xx holds an embeddings list."""
        ...

    async def discover_models(self, upstream: Upstream, key: str) -> list[str]: ...

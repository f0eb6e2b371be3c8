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


@dataclass(frozen=True, slots=True)
class Failure:
    """What a failed attempt means for the next one."""

    retry: bool  # another key or model may succeed
    cooldown: float | None = None  # seconds, when the provider said how long
    rest: bool = False  # cool this (backend, model, key) down: for `cooldown` s, else the default
    retire: bool = False  # the key is unusable for every model (e.g. credits exhausted)
    reason: str = ""


class StreamTranslator(Protocol):
    """Turns raw provider stream bytes into OpenAI SSE bytes, incrementally."""

    def feed(self, data: bytes) -> list[bytes]: ...

    def finish(self) -> list[bytes]: ...


class Backend(Protocol):
    name: str

    def build_call(
        self, request: dict[str, Any], model: str, key: str, stream: bool, project: str | None = None
    ) -> UpstreamCall: ...

    def translate_response(
        self, status: int, headers: Mapping[str, str], body: bytes, model: str
    ) -> Translated: ...

    def failure(self, status: int, headers: Mapping[str, str], body: bytes) -> Failure: ...

    def stream_translator(self, request: dict[str, Any], model: str) -> StreamTranslator: ...

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

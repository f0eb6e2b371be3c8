"""Google Gemini: OpenAI requests translated to generateContent, answers translated back.

The key travels in `x-goog-api-key`, never in the URL, so it cannot reach logs or mitmweb's URL column.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from addons.backends.base import Failure, SavedCalls, Translated
from addons.backends.errors import classify_status, context_exceeded
from addons.backends.media_fetch import MediaFetcher
from addons.upstream import Upstream, UpstreamCall
from translators import json_codec
from translators.gemini import (
    GeminiFormatError,
    GeminiStreamTranslator,
    TranslationError,
    count_tokens_path,
    from_gemini_response,
    gemini_error_to_openai,
    gemini_path,
    key_rejected,
    parse_model_page,
    read_token_count,
    retry_info,
    to_count_tokens_request,
    to_gemini_request,
)
from translators.gemini.embeddings import embeddings_answer, embeddings_request
from translators.gemini.request import request_notes
from translators.gemini.signatures import with_saved_calls
from translators.openai.context import CONTEXT_CODE
from translators.openai.synthetic import error_json
from translators.openai.types import RequestError

MAX_MODEL_PAGES = 50  # bounded discovery even if a server keeps handing out page tokens


class GeminiBackend:
    name = "gemini"
    reads_saved_calls = True  # thought signatures the history's tool calls need back

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def build_call(
        self,
        request: dict[str, Any],
        model: str,
        key: str,
        stream: bool,
        project: str | None = None,
        saved: SavedCalls | None = None,
    ) -> UpstreamCall:
        try:
            body = to_gemini_request(with_saved_calls(request, saved.known if saved else {}), model=model)
            path = gemini_path(model, stream)
        except TranslationError as e:
            raise RequestError(e.message, e.param) from None
        return self._post(path, body, key, stream)

    def count_call(self, request: dict[str, Any], model: str, key: str) -> UpstreamCall:
        try:
            body = to_count_tokens_request(request, model=model)
            path = count_tokens_path(model)
        except TranslationError as e:
            raise RequestError(e.message, e.param) from None
        return self._post(path, body, key)

    def embeddings_call(self, request: dict[str, Any], model: str, key: str) -> UpstreamCall:
        try:
            path, body = embeddings_request(request, model)
        except TranslationError as e:
            raise RequestError(e.message, e.param) from None
        return self._post(path, body, key)

    def _post(self, path: str, body: dict[str, Any], key: str, stream: bool = False) -> UpstreamCall:
        headers = {"content-type": "application/json", "x-goog-api-key": key}
        if stream:
            # The translator needs raw SSE as it arrives; compression would only add buffering.
            headers["accept-encoding"] = "identity"
        return UpstreamCall(
            "POST", self.base_url + path, headers, json_codec.dumps(body), stream, ("x-goog-api-key",)
        )

    def read_count(self, body: bytes) -> int | None:
        try:
            return read_token_count(json_codec.loads(body))
        except (UnicodeDecodeError, json_codec.JSONDecodeError):
            return None

    def translate_response(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        model: str,
        saved: SavedCalls | None = None,
    ) -> Translated:
        if 200 <= status < 300:
            kept = saved.minted if saved else None
            return _success(status, body, lambda data: from_gemini_response(data, model=model, kept=kept))
        json_headers = {"content-type": "application/json"}
        out_status, error, retry_after = gemini_error_to_openai(status, body)
        if retry_after is not None:
            json_headers["retry-after"] = str(max(1, round(retry_after)))
        return Translated(out_status, json_codec.dumps(error), json_headers)

    def translate_embeddings(
        self, status: int, headers: Mapping[str, str], body: bytes, model: str, request: dict[str, Any]
    ) -> Translated:
        if 200 <= status < 300:
            return _success(status, body, lambda data: embeddings_answer(data, model, request))
        return self.translate_response(status, headers, body, model)

    def failure(self, status: int, headers: Mapping[str, str], body: bytes) -> Failure:
        if status == 400 and gemini_error_to_openai(status, body)[1]["error"]["code"] == CONTEXT_CODE:
            return context_exceeded(status)
        verdict = classify_status(status, headers)
        if status in (400, 403) and key_rejected(body):
            # Revoked or expired: another key will do, and this one never will.
            return Failure(True, retire=True, reason=f"key rejected by Google ({status})")
        if status != 429:
            return verdict
        delay, per_day = retry_info(body)
        if per_day:
            return Failure(True, seconds_until_pacific_midnight(), True, reason="daily quota exhausted (429)")
        return Failure(True, delay if delay is not None else verdict.cooldown, True, reason=verdict.reason)

    def stream_translator(
        self, request: dict[str, Any], model: str, saved: SavedCalls | None = None
    ) -> GeminiStreamTranslator:
        kept = saved.minted if saved else None
        return GeminiStreamTranslator(model=model, kept=kept)

    async def prepare(self, request: dict[str, Any], fetcher: MediaFetcher | None = None) -> dict[str, Any]:
        """The request with remote media whose type its URL does not tell fetched and inlined
        (media_fetch.py): once per client request, before the attempts. `request` is left unchanged."""
        return await (fetcher or MediaFetcher()).inline(request)

    def request_notes(self, request: dict[str, Any], model: str) -> list[str]:
        try:
            return request_notes(request, model)
        except TranslationError:  # build_call says what is wrong with the request
            return []

    async def discover_models(self, upstream: Upstream, key: str) -> list[str]:
        models: list[str] = []
        token: str | None = None
        for _ in range(MAX_MODEL_PAGES):
            params = {"pageSize": "1000", **({"pageToken": token} if token else {})}
            page = await upstream.get_json(f"{self.base_url}/v1beta/models", {"x-goog-api-key": key}, params)
            ids, token = parse_model_page(page)
            models.extend(ids)
            if not token:
                break
        return models


def _success(status: int, body: bytes, translate: Callable[[Any], dict[str, Any]]) -> Translated:
    """A 2xx answer translated to OpenAI's shape; one that is no answer at all is a 502 to retry past."""
    json_headers = {"content-type": "application/json"}
    try:
        result = translate(json_codec.loads(body))
    except (UnicodeDecodeError, json.JSONDecodeError, GeminiFormatError) as e:
        message = f"Gemini answered HTTP {status} with something that is not a response: {e!s:.200}"
        return Translated(502, error_json(message, 502, code="upstream_bad_response"), json_headers)
    return Translated(status, json_codec.dumps(result), json_headers)


def seconds_until_pacific_midnight(now: datetime | None = None) -> float:
    """Per-day Gemini quotas reset at midnight Pacific time."""
    tz = ZoneInfo("America/Los_Angeles")
    now = now or datetime.now(tz)
    local = now.astimezone(tz)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(60.0, (midnight - local).total_seconds())

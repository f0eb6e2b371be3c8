"""Anthropic's model list (`GET /v1/models`) for the model ids the proxy serves."""

from __future__ import annotations

from typing import Any

# Anthropic: "May be set to an epoch value if the release date is unknown" (we never know it).
UNKNOWN_RELEASE = "1970-01-01T00:00:00Z"


def model_entry(id_: str) -> dict[str, Any]:
    # `lifecycle` is required by current Anthropic SDKs' ModelInfo; every model we list is callable.
    return {
        "type": "model",
        "id": id_,
        "display_name": id_,
        "created_at": UNKNOWN_RELEASE,
        "lifecycle": "active",
    }


def model_list(ids: list[str]) -> dict[str, Any]:
    """One page holding every id: the proxy has no paging to offer."""
    return {
        "data": [model_entry(i) for i in ids],
        "has_more": False,
        "first_id": ids[0] if ids else None,
        "last_id": ids[-1] if ids else None,
    }

"""Canonical paths (addons/security/paths.py): every spelling of a path a server might read as ours."""

from __future__ import annotations

import pytest

from addons.pipeline.dispatch import route
from addons.security.paths import canonical_path, is_canonical

# Every form of the chat path a server might read as /v1/chat/completions.
CHAT_VARIANTS = [
    "//v1/chat/completions",
    "/v1//chat/completions",
    "/v1/./chat/completions",
    "/v1/x/../chat/completions",
    "/../v1/chat/completions",
    "/v1%2Fchat%2Fcompletions",
    "/v1%2fchat/completions",
    "/V1/Chat/Completions",
    "/v1/chat/completions;x",
    "/v1;a=b/chat/completions",
    "/v1\\chat\\completions",
    "/v1/%63hat/completions",
    "/v1/chat/completions/",
    "/v1/chat/completions/.",
]


@pytest.mark.parametrize("path", CHAT_VARIANTS)
def test_every_variant_routes_to_chat_and_is_not_canonical(path: str) -> None:
    assert route("POST", canonical_path(path)) == "chat"
    if path != "/V1/Chat/Completions" and path != "/v1/chat/completions/":
        assert not is_canonical(path)


@pytest.mark.parametrize(
    "path",
    ["/v1/embeddings", "/v1/files/file-abc/content?x=%2F", "/v1/files/a%20b", "/v1/models/ft:gpt:org:1"],
)
def test_plain_paths_are_canonical(path: str) -> None:
    assert is_canonical(path)


@pytest.mark.parametrize(
    "path", ["/v1/chat%252Fcompletions", "/v1/%2e%2e/admin", "/v1/a%5cb", "/v1/a%00", "*", "v1/models"]
)
def test_escapes_that_hide_structure_are_not_canonical(path: str) -> None:
    assert not is_canonical(path)


def test_canonical_path_keeps_case_and_parameters_of_the_last_segment() -> None:
    assert canonical_path("/V1/models/openai%2FGPT-4o?x=1") == "/V1/models/openai/GPT-4o"
    assert canonical_path("/v1/sessions/AbC/history") == "/v1/sessions/AbC/history"
    assert canonical_path("/a/../../..") == "/"

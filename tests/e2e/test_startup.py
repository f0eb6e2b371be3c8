"""Start-up: bad settings stop the proxy with a message naming the setting."""

from __future__ import annotations

import pytest

from tests.harness import ProxyProcess


@pytest.mark.parametrize(
    ("env", "sets", "expected"),
    [
        ({"PROXY_TIMEOUT": "soon"}, {}, "PROXY_TIMEOUT"),
        ({}, {"proxy_timeout": "-1"}, "--set proxy_timeout"),
        ({"LLM_BACKEND": "openai"}, {}, "LLM_BACKEND"),
        (
            {"OPENROUTER_API_KEY": "sk-or-v1-7f3c9e1a4b2d", "OPENROUTER_API_KEY_1": "sk-or-v1-c05e8d26b9f1"},
            {},
            "not both",
        ),
        ({"OPENROUTER_API_BASE_URL": "ftp://nope"}, {}, "OPENROUTER_API_BASE_URL"),
    ],
)
def test_bad_setting_stops_startup(env: dict[str, str], sets: dict[str, str], expected: str) -> None:
    p = ProxyProcess(env=env, sets=sets, wait_ready=False).start()
    try:
        assert p.wait_exit(30) != 0
    finally:
        p.stop()
    assert expected in p.log
    assert "sk-or-v1-7f3c9e1a4b2d" not in p.log


def test_set_beats_env_beats_yaml() -> None:
    yaml = "command_prefix: '%%'\nproxy_timeout: 7\napp_x_title: from-yaml\n"
    with ProxyProcess(
        env={"PROXY_TIMEOUT": "9", "COMMAND_PREFIX": "##"}, sets={"command_prefix": "@@"}, config_yaml=yaml
    ) as p:
        assert "command prefix @@" in p.log

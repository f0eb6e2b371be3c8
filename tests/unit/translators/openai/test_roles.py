"""`role` once per choice: OpenRouter's streams through the passthrough, the proxy's own streams, and what
the openai SDK's stream helper (`chat.completions.stream()`) assembles from them."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from addons.backends.openrouter import CheckedPassthrough
from translators.openai.roles import RoleOnce
from translators.openai.synthetic import stream_completion
from translators.sse import SSEDecoder

HEAD = '"id":"gen-1","provider":"OpenAI","model":"openai/gpt-4o-mini","object":"chat.completion.chunk"'
HEAD += ',"created":1'
USAGE = '"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}'


def openrouter_chunk(delta: str, finish: str = "null", index: int = 0) -> bytes:
    """A chunk as OpenRouter writes it: compact, `role` first in every delta."""
    choice = f'{{"index":{index},"delta":{{"role":"assistant",{delta}}},"finish_reason":{finish}}}'
    return f'data: {{{HEAD},"choices":[{choice}]}}\n\n'.encode()


OPENROUTER = b"".join(
    [
        b": OPENROUTER PROCESSING\n\n",
        openrouter_chunk('"content":"","reasoning":"hmm"'),
        openrouter_chunk('"content":"Hel"'),
        openrouter_chunk('"content":"lo \\"role\\": x"'),
        openrouter_chunk('"content":""', '"stop"'),
        f'data: {{{HEAD},"choices":[],{USAGE}}}\n\n'.encode(),
        b"data: [DONE]\n\n",
    ]
)


def through(pieces: list[bytes]) -> bytes:
    p = CheckedPassthrough()
    out = [b for piece in pieces for b in p.feed(piece)]
    return b"".join(out + p.finish())


def chunks(sse: bytes) -> list[dict[str, Any]]:
    d = SSEDecoder()
    events = d.feed(sse) + d.finish()
    return [json.loads(e.data) for e in events if e.data != "[DONE]"]


def assembled_roles(sse: bytes) -> list[str]:
    """The role of each choice as the SDK's stream helper builds it."""
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for c in chunks(sse):
        state.handle_chunk(ChatCompletionChunk.model_validate(c))
    return [choice.message.role for choice in state.get_final_completion().choices]


def roles_sent(sse: bytes) -> list[tuple[int, str]]:
    return [
        (c["index"], c["delta"]["role"]) for ch in chunks(sse) for c in ch["choices"] if "role" in c["delta"]
    ]


def test_sdk_helper_builds_a_repeated_role_from_openrouter_as_is() -> None:
    """Why the rule exists: the helper concatenates string deltas, role included."""
    assert assembled_roles(OPENROUTER) == ["assistant" * 4]


def test_openrouter_role_only_on_the_first_chunk() -> None:
    out = through([OPENROUTER])
    assert roles_sent(out) == [(0, "assistant")]
    assert assembled_roles(out) == ["assistant"]
    # Nothing else changes, byte for byte: the later chunks only lose their role member.
    first_role = OPENROUTER.index(b'"role"') + 1
    expected = OPENROUTER[:first_role] + OPENROUTER[first_role:].replace(b'"role":"assistant",', b"")
    assert out == expected


def test_role_only_delta_and_spaced_json_keep_their_bytes() -> None:
    stream = (
        b'data: {"choices": [{"index": 0, "delta": {"role": "assistant"}}]}\n\n'
        b'data: {"choices": [{"index": 0, "delta": {"role": "assistant"}}]}\n\n'
        b'data: {"choices": [{"index": 0, "delta": {"role" : "assistant" , "content": "x"}}]}\n\n'
    )
    assert RoleOnce().feed(stream) == (
        b'data: {"choices": [{"index": 0, "delta": {"role": "assistant"}}]}\n\n'
        b'data: {"choices": [{"index": 0, "delta": {}}]}\n\n'
        b'data: {"choices": [{"index": 0, "delta": { "content": "x"}}]}\n\n'
    )


def test_each_choice_keeps_its_own_first_role() -> None:
    stream = b"".join(openrouter_chunk(f'"content":"{t}"', index=i) for t in ("a", "b") for i in (0, 1))
    assert roles_sent(RoleOnce().feed(stream)) == [(0, "assistant"), (1, "assistant")]


def test_other_shapes_are_parsed_and_fixed() -> None:
    roles = RoleOnce()
    first = b'data: {"choices":[{"delta":{"content":"a","role":"assistant"},"index":0}]}\n\n'
    again = b'data: {"choices":[{"delta":{"content":"b","role":"assistant"},"index":0}]}\r\n\r\n'
    assert roles.feed(first) == first
    assert roles.feed(again) == b'data: {"choices":[{"delta":{"content":"b"},"index":0}]}\r\n\r\n'


def test_text_that_says_role_is_left_alone() -> None:
    roles = RoleOnce(seen=(0,))
    for line in (
        b'data: {"choices":[{"index":0,"delta":{"content":"role"}}]}\n\n',
        b'data: {"choices":[{"index":0,"delta":{"content":"\\"role\\":\\"assistant\\""}}]}\n\n',
        b': a comment with "role" in it\n\n',
        b'data: {"choices":[{"index":0,\n\n',  # not JSON on its own
    ):
        assert roles.feed(line) == line


def test_primed_index_loses_its_first_role_too() -> None:
    """A stream after the proxy's own first chunk (the interactive prelude) sends no role at all."""
    assert roles_sent(RoleOnce(seen=(0,)).feed(OPENROUTER)) == []


def test_proxy_streams_send_role_once() -> None:
    sse = stream_completion("proxy text", "m", include_usage=True)
    assert roles_sent(sse) == [(0, "assistant")]
    assert assembled_roles(sse) == ["assistant"]


# Events in every shape the rule distinguishes, for the split property.
EVENTS = st.sampled_from(
    [
        openrouter_chunk('"content":"x"'),
        openrouter_chunk('"content":"y"', index=1),
        openrouter_chunk('"content":"role"', '"stop"'),
        b'data: {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "s"}}]}\n\n',
        b'data: {"choices":[{"delta":{"role":"assistant","content":"p"},"index":0}]}\n\n',
        b'data: {"choices":[{"index":0,"delta":{"content":"no role"}}]}\r\n\r\n',
        b": OPENROUTER PROCESSING\n\n",
    ]
)


@given(st.lists(EVENTS, min_size=1, max_size=8), st.lists(st.integers(min_value=0), max_size=10))
@settings(max_examples=300, deadline=None)
def test_any_split_gives_the_same_output(events: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(events) + b"data: [DONE]\n\n"
    points = sorted({c % (len(stream) + 1) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    whole = through([stream])
    assert through(pieces) == whole
    sent = roles_sent(whole)
    assert len(sent) == len({i for i, _ in sent}), sent  # at most one role per choice
    expected_indexes = {c["index"] for ch in chunks(stream) for c in ch["choices"] if "role" in c["delta"]}
    assert {i for i, _ in sent} == expected_indexes

"""The tool-call loop, read from the request's history alone: identical rounds at the end count, call
ids and JSON spelling do not, and anything else in between starts the count again."""

from __future__ import annotations

import json
from typing import Any

from addons.guards.tool_loop import SHOWN_ARGUMENTS, find_tool_loop, steered

ASK = {"role": "user", "content": "Is the build green?"}


def round_(n: int, args: Any = None, result: str = "build: failed (1 error)", name: str = "run") -> list[Any]:
    """One assistant tool call and its result, with ids of its own (as every real round has)."""
    arguments = json.dumps(args if args is not None else {"cmd": "make", "dir": "."})
    call = {"id": f"call_{n}", "type": "function", "function": {"name": name, "arguments": arguments}}
    return [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": f"call_{n}", "content": result},
    ]


def rounds(k: int, start: int = 0, **kw: Any) -> list[Any]:
    return [m for n in range(start, start + k) for m in round_(n, **kw)]


def test_identical_rounds_at_the_end_are_counted_up_to_one_past_the_limit() -> None:
    assert find_tool_loop([ASK, *rounds(6)], 7) is None
    loop = find_tool_loop([ASK, *rounds(7)], 7)
    assert loop is not None and loop.times == 7 and loop.name == "run"
    assert json.loads(loop.arguments) == {"cmd": "make", "dir": "."}
    far = find_tool_loop([ASK, *rounds(30)], 7)
    assert far is not None and far.times == 8  # counting stops there: nothing reads further


def test_the_same_arguments_in_another_spelling_are_the_same_call() -> None:
    spelled = [*round_(0), *round_(1)]
    spelled[2]["tool_calls"][0]["function"]["arguments"] = '{ "dir": ".",  "cmd": "make" }'
    assert find_tool_loop([ASK, *spelled], 2) is not None


def test_another_result_argument_or_tool_breaks_the_run() -> None:
    base = rounds(7)
    assert find_tool_loop([ASK, *base[:-2], *round_(9, result="build: ok")], 7) is None
    assert find_tool_loop([ASK, *base[:-2], *round_(9, args={"cmd": "make test"})], 7) is None
    assert find_tool_loop([ASK, *base[:-2], *round_(9, name="run2")], 7) is None
    # The run must end the conversation: a newer answer, or a user's message, starts over.
    assert find_tool_loop([ASK, *base, {"role": "assistant", "content": "It fails."}], 7) is None
    assert find_tool_loop([ASK, *base, {"role": "user", "content": "try again"}], 7) is None
    # A different round in the middle: only the rounds after it count.
    mixed = [ASK, *rounds(4), *round_(50, result="other"), *rounds(6, start=60)]
    assert find_tool_loop(mixed, 7) is None
    loop = find_tool_loop(mixed, 6)
    assert loop is not None and loop.times == 6


def test_rounds_with_several_calls_and_user_text_compare_whole() -> None:
    def parallel(n: int, note: str) -> list[Any]:
        calls = [
            {"id": f"a{n}", "type": "function", "function": {"name": "read", "arguments": '{"f": "a"}'}},
            {"id": f"b{n}", "type": "function", "function": {"name": "read", "arguments": '{"f": "b"}'}},
        ]
        return [
            {"role": "assistant", "content": "Reading both.", "tool_calls": calls},
            {"role": "tool", "tool_call_id": f"b{n}", "content": "B"},  # results in any order
            {"role": "tool", "tool_call_id": f"a{n}", "content": "A"},
            {"role": "user", "content": [{"type": "text", "text": note}]},  # text sent with the results
        ]

    same = [m for n in range(3) for m in parallel(n, "reminder")]
    loop = find_tool_loop([ASK, *same], 3)
    assert loop is not None and loop.name == "read"
    changed = [*same[:-4], *parallel(9, "the user says: stop")]
    assert find_tool_loop([ASK, *changed], 3) is None


def test_odd_histories_are_no_loop() -> None:
    assert find_tool_loop(None, 2) is None
    assert find_tool_loop([], 2) is None
    assert find_tool_loop([ASK, {"role": "assistant", "content": "hi"}, {"role": "tool"}], 2) is None
    broken = [{"role": "assistant", "tool_calls": ["not a call"]}, {"role": "tool", "content": "x"}] * 3
    assert find_tool_loop(broken, 2) is None


def test_the_note_goes_on_the_latest_result_of_a_copy() -> None:
    request = {"model": "m", "messages": [ASK, *rounds(2)]}
    out = steered(request, "NOTE")
    assert out["messages"][-1]["content"] == "build: failed (1 error)\n\nNOTE"
    assert request["messages"][-1]["content"] == "build: failed (1 error)"  # the client's, untouched
    assert out["messages"][:-1] == request["messages"][:-1]
    parts = {"model": "m", "messages": [ASK, *round_(0, result="x")]}
    parts["messages"][-1]["content"] = [{"type": "text", "text": "x"}]
    assert steered(parts, "NOTE")["messages"][-1]["content"][-1] == {"type": "text", "text": "NOTE"}


def test_long_arguments_are_shortened_where_they_are_shown() -> None:
    loop = find_tool_loop([ASK, *rounds(2, args={"text": "x" * 500})], 2)
    assert loop is not None
    shown = loop.call()
    assert shown.startswith('run({"text": "xxx') and shown.endswith("…)")
    assert len(shown) <= len("run()…") + SHOWN_ARGUMENTS

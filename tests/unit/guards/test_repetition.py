"""The repetition detector: loops of every block size trip, real long texts never do, and a stream trips
on the same text however it is cut into pieces."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from addons.guards.repetition import CHECK_EVERY, RepetitionLimits, RepetitionWatch, find_loop, first_loop
from tests.long_texts import long_texts, looping, pieces

LIMITS = RepetitionLimits(repeats=5, min_chars=3000, window=16000)  # the defaults


@pytest.mark.parametrize(
    "block",
    [
        "I will check the file again.\n",  # a sentence
        "the ",  # a word
        "\n",  # blank lines
        "Wait, that is not right. Let me reconsider the approach from the beginning: " * 3,  # a paragraph
        "".join(f"line {i} of a long block that the model goes on repeating\n" for i in range(40)),  # 2.4k
    ],
    ids=["sentence", "word", "newlines", "paragraph", "long-block"],
)
def test_a_loop_of_any_block_size_trips(block: str) -> None:
    text = looping(block, times=-(-max(3000, 5 * len(block)) // len(block)) + 3)
    found = first_loop(text, LIMITS)
    assert found is not None
    loop, at = found
    assert loop.times >= LIMITS.repeats and loop.block * (loop.times + 1) > LIMITS.min_chars
    assert len(block) % loop.block == 0 or loop.block % len(block) == 0  # the block, or a whole number of it
    # Caught soon after the loop is long enough, not at the end of the text.
    assert at <= len(looping("", 0)) + max(LIMITS.min_chars, LIMITS.repeats * len(block)) + 2 * CHECK_EVERY


@pytest.mark.parametrize("name", list(long_texts()))
def test_real_long_texts_never_trip(name: str) -> None:
    assert first_loop(long_texts()[name], LIMITS) is None


def test_repetition_below_the_limits_does_not_trip() -> None:
    row = "| 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 |\n"  # a zero matrix: many rows, but a short run
    assert first_loop("Here it is:\n\n" + row * 60 + "\nDone.", LIMITS) is None
    paragraph = "A long paragraph, quoted twice in an answer comparing two versions of a document. " * 20
    assert first_loop(paragraph + "\n\nversus\n\n" + paragraph, LIMITS) is None  # 2 repeats, not 5
    assert find_loop("=" * 2999, LIMITS) is None and find_loop("=" * 3000, LIMITS) is not None


def test_the_window_bounds_the_block() -> None:
    small = RepetitionLimits(repeats=5, min_chars=300, window=1000)
    assert first_loop(looping("x" * 150 + "\n", 20), small) is not None  # 151 * 5 <= 1000
    assert first_loop(looping("y" * 199 + "z" * 100 + "\n", 20), small) is None  # 300 * 5 > 1000


@settings(max_examples=100, deadline=None)
@given(
    lead=st.text(max_size=300),
    block=st.text(min_size=1, max_size=400),
    cuts=st.lists(st.integers(1, 300), min_size=1, max_size=20),
)
def test_a_stream_trips_whatever_its_pieces(lead: str, block: str, cuts: list[int]) -> None:
    text = lead + block * (-(-max(3000, 5 * len(block)) // len(block)) + 2 * CHECK_EVERY)
    watch, at, k, found = RepetitionWatch(LIMITS), 0, 0, None
    while at < len(text) and found is None:
        size = cuts[k % len(cuts)]
        found = watch.feed(text[at : at + size])
        at, k = at + size, k + 1
    assert found is not None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=80), min_size=1, max_size=200, unique=True))
def test_distinct_lines_never_trip(lines: list[str]) -> None:
    text = "\n".join(line.replace("\n", " ") for line in lines) * 1
    watch = RepetitionWatch(RepetitionLimits(repeats=5, min_chars=300, window=4000))
    assert all(watch.feed(p) is None for p in pieces(text))

"""Text that has started repeating itself: the same block over and over at the end of what was written.

A loop trips only when a block repeats at least `repeats` times in a row *and* the repeated run is at
least `min_chars` long: a short phrase said twice, the rows of a small zero matrix, a separator line
or a table rule never trip, and a paragraph looping five times or a word looping for a page does.
Repetition is exact (a loop of a sampled model is); text that merely looks alike never trips.

The stream side is cheap per piece: `feed` only collects text, and every CHECK_EVERY characters one check
looks at the last `window` characters (C-speed string searches and one comparison, bounded tries).
"""

from __future__ import annotations

from dataclasses import dataclass

CHECK_EVERY = 256  # characters between two checks: a loop is caught at most this late
PROBE = 64  # the last characters, searched for earlier in the window: where they recur, a period may be
MAX_TRIES = 64  # candidate periods checked per look (a real loop's is the first or close to it)


@dataclass(frozen=True, slots=True)
class RepetitionLimits:
    repeats: int  # times a block repeats in a row
    min_chars: int  # length of the repeated run, at least
    window: int  # characters looked back; blocks up to window // repeats long are found


@dataclass(frozen=True, slots=True)
class Loop:
    block: int  # characters in the repeated block
    times: int  # whole repetitions in the run found (at least; a longer run may go on before it)


class RepetitionWatch:
    """Text fed piece by piece; `feed` says when its end has become a loop."""

    __slots__ = ("_fresh", "_fresh_chars", "_tail", "limits")

    def __init__(self, limits: RepetitionLimits) -> None:
        self.limits = limits
        self._tail = ""
        self._fresh: list[str] = []
        self._fresh_chars = 0

    def feed(self, text: str) -> Loop | None:
        self._fresh.append(text)
        self._fresh_chars += len(text)
        if self._fresh_chars < CHECK_EVERY:
            return None
        self._tail = (self._tail + "".join(self._fresh))[-self.limits.window :]
        self._fresh.clear()
        self._fresh_chars = 0
        return find_loop(self._tail, self.limits)


def find_loop(text: str, limits: RepetitionLimits) -> Loop | None:
    """The loop `text` ends in, if it ends in one."""
    n = len(text)
    if n < max(limits.min_chars, 2 * PROBE):
        return None
    probe = text[n - PROBE :]
    longest = n // limits.repeats
    # Each earlier occurrence of the probe ending `p` characters before the end is a candidate period.
    pos = text.rfind(probe, 0, n - 1)
    for _ in range(MAX_TRIES):
        if pos < 0:
            return None
        p = n - (pos + PROBE)
        if p > longest:
            return None
        span = max(p * limits.repeats, limits.min_chars)
        # The last `span` characters equal themselves shifted by `p`: one block, span / p times.
        if span <= n and text[n - span : n - p] == text[n - span + p :]:
            return Loop(p, span // p)
        pos = text.rfind(probe, 0, pos + PROBE - 1)
    return None


def first_loop(text: str, limits: RepetitionLimits) -> tuple[Loop, int] | None:
    """The loop a whole text would have tripped on as a stream (looked for every CHECK_EVERY characters,
    and at its end), and how much of it had been written by then: where a stream would have been cut."""
    if len(text) < limits.min_chars:
        return None
    for start in range(limits.min_chars - CHECK_EVERY, len(text), CHECK_EVERY):
        end = min(start + CHECK_EVERY, len(text))
        if (loop := find_loop(text[max(0, end - limits.window) : end], limits)) is not None:
            return loop, end
    return None

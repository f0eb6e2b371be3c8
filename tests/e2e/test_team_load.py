"""A team's proxies under load (issue 16, acceptance 2): three instances on one Redis and one PostgreSQL,
many streaming clients sent round-robin across them as a load balancer would. Every stream must be the
exact echo of its prompt (checked as tests/load checks them), with no error, and the shared rotation must
spread the requests evenly over the backend's keys: max/min requests per key <= 1.2.

    .venv/bin/python -m pytest tests/e2e/test_team_load.py -q                # 3 x 10 clients for 5 s
    LLM_LOAD=full .venv/bin/python -m pytest tests/e2e/test_team_load.py -q  # 3 x 50 clients for 30 s
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.e2e.team_fixtures import MODELS, Servers, Team, servers
from tests.fakes.keyed import OR_KEYS, KeyedOpenRouter, or_hits
from tests.load.support import FULL, Campaign, RawConn, Result, bad_lines, chat

__all__ = ["servers"]  # a fixture, imported to be found

INSTANCES = 3
CLIENTS, DURATION = (50, 30.0) if FULL else (10, 5.0)  # per instance; seconds
TIMEOUT = 30.0  # per request, whole stream included: longer is a hang
SPREAD = 1.2  # the bound on max/min requests per key
OUTAGE = re.compile(r"^.*(?:unreachable|did not answer).*$", re.M)  # Redis / PostgreSQL log lines


@pytest.fixture(scope="module")
def fake() -> Iterator[KeyedOpenRouter]:
    """Four keys; streams of a few events a little apart, so that the clients' streams overlap."""
    with KeyedOpenRouter(OR_KEYS, MODELS) as f:
        f.delay = 0.01
        yield f


@pytest.fixture(scope="module")
def team(servers: Servers, fake: KeyedOpenRouter) -> Iterator[Team]:
    t = Team(servers, fake, INSTANCES)
    t.env |= {f"OPENROUTER_API_KEY_{i}": key for i, key in enumerate(OR_KEYS, 1)}
    try:
        yield t.start()
    finally:
        t.close()


class Balanced(RawConn):
    """One client behind a round-robin load balancer: each request goes to the next instance, over a
    keep-alive connection of its own per instance (a RawConn, so that `chat` drives it like one)."""

    def __init__(self, ports: list[int], first: int) -> None:
        super().__init__(ports[0])
        self.conns = [RawConn(port) for port in ports]
        self.turn = first

    async def post(
        self, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        conn = self.conns[self.turn % len(self.conns)]
        self.turn += 1
        return await conn.post(path, body, headers)

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


async def drive(
    ports: list[int], camp: Campaign, clients: int = 50, duration: float = 30.0, max_requests: int = 2000
) -> list[Result]:
    """`clients` concurrent streaming clients per instance, each asking one question after another (in a
    session of its own) until `duration` s have passed or it made `max_requests`; every answer checked
    exact."""
    deadline = time.monotonic() + duration
    out: list[Result] = []

    async def one(i: int) -> None:
        conn, headers = Balanced(ports, i), {"X-Session-ID": f"team-load-{i}"}
        try:
            for n in range(max_requests):
                if time.monotonic() >= deadline:
                    return
                prompt = f"team c{i} n{n} {os.urandom(6).hex()} żółw ✓"
                out.append(
                    await chat(conn, camp, "team", prompt, stream=True, timeout=TIMEOUT, headers=headers)
                )
        finally:
            conn.close()

    await asyncio.gather(*(one(i) for i in range(clients * len(ports))))
    return out


@pytest.mark.timeout(300 if FULL else 120)
def test_streams_exact_and_keys_even_across_three_instances(team: Team, fake: KeyedOpenRouter) -> None:
    camp = Campaign(team.secrets())
    fake.reset()
    t0 = time.monotonic()
    results = asyncio.run(drive([p.reverse_port for p in team.proxies], camp, CLIENTS, DURATION))
    wall = time.monotonic() - t0
    per_key = Counter(hit.key for hit in or_hits(fake))
    print(
        f"team load: {INSTANCES} x {CLIENTS} streaming clients, {len(results)} requests in {wall:.1f} s "
        f"({len(results) / wall:.0f}/s); requests per key {dict(sorted(per_key.items()))}"
    )
    bad = [r for r in results if r.outcome != "ok"]
    assert not bad, f"{len(bad)} of {len(results)} answers not exact:\n{bad_lines(bad)}"
    assert len(results) >= CLIENTS * INSTANCES, f"only {len(results)} requests in {DURATION:g} s"
    assert sum(per_key.values()) == len(results)  # one upstream request each: no retry hid an error
    assert set(per_key) == {f"OPENROUTER_API_KEY_{i}" for i in range(1, len(OR_KEYS) + 1)}, per_key
    assert max(per_key.values()) / min(per_key.values()) <= SPREAD, per_key
    assert camp.scanned == len(results) and not camp.leaks
    assert all(p.proc is not None and p.proc.poll() is None for p in team.proxies)
    assert team.leaks() == {}
    # The shared state served throughout: no instance fell back to its own (or buffered its history).
    outages = [m[0] for p in team.proxies for m in OUTAGE.finditer(p.log)]
    assert not outages, f"{len(outages)} outage line(s) though both servers ran: {outages[:6]}"


def test_one_rotation_is_shared_by_the_instances(team: Team, fake: KeyedOpenRouter) -> None:
    """Fresh instances take their positions from blocks claimed one after the other, each block starting
    one key further round: sent one at a time round-robin, requests never take the same key twice in a
    row and every key the same number of times (three instances rotating on their own would all start
    at the first key and hand out each key three times in a row)."""
    team.restart()  # fresh processes: no block held yet (Redis keeps the count)
    fake.reset()
    count = INSTANCES * len(OR_KEYS)
    for n in range(count):
        assert team.chat(n % INSTANCES, f"turn {n}", "turns", stream=bool(n % 2)) == f"echo: turn {n}"
    used = [hit.key for hit in or_hits(fake)]
    assert len(used) == count
    assert all(a != b for a, b in itertools.pairwise(used)), used
    assert Counter(used) == {key: INSTANCES for key in Counter(used)} and len(set(used)) == len(OR_KEYS), used

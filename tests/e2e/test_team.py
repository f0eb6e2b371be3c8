"""A team's proxies end to end (issue 16, acceptance 1, 3 and 4): real mitmdumps sharing one Redis and one
PostgreSQL, driven directly round-robin as a load balancer would, in front of a fake OpenRouter whose
records show which key and model each request really used.

The functional tests share three instances on the machine's servers (tests/e2e/team_fixtures.py); the
fault tests take throwaway servers of their own and stop them mid-run. Every test ends with a scan of
what its namespace left in Redis and PostgreSQL: no fragment of any configured key.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.e2e.responses_fixtures import text_of
from tests.e2e.team_fixtures import (
    CHOSEN,
    KEYS,
    LIMITED,
    MODEL,
    OUTAGE,
    ROUTED,
    Load,
    Servers,
    Team,
    client,
    ofake,
    outage_servers,
    servers,
    team,
    used_keys,
)
from tests.fakes.keyed import KeyedOpenRouter, cooling_lines
from tests.fakes.server import Script
from tests.harness import wait_for

__all__ = ["ofake", "outage_servers", "servers", "team"]  # fixtures, imported to be found

PROPAGATION = 0.1  # the bound: a change made through one instance is seen by all within 100 ms
RESYNC = 5.0  # the bound: an instance resynchronises within 5 s of Redis coming back


@pytest.fixture(autouse=True)
def _fresh_fake(ofake: KeyedOpenRouter) -> None:
    ofake.reset()


def chat_bodies(fake: KeyedOpenRouter) -> list[dict[str, Any]]:
    with fake._lock:
        return [r.json() for r in fake.requests if r.path.endswith("/chat/completions")]


def status(t: Team, i: int) -> str:
    return t.chat(i, "!/status", "ops")


def make_route(t: Team, i: int, name: str) -> None:
    """Failover route `name` to the ROUTED model, made through instance `i` (two messages: a message is
    validated whole before anything in it applies, and an append needs the route to exist)."""
    made = t.chat(i, f"!/create-failover-route(name={name}, policy=m)", "ops")
    assert made.startswith(f"failover route {name} created"), made
    appended = t.chat(i, f"!/route-append(name={name}, openrouter:{ROUTED})", "ops")
    assert appended == f"route {name}: appended openrouter:{ROUTED}", appended


def wait_after(moment: float, seconds: float) -> None:
    """Until `seconds` after `moment`: a bound the issue sets, never a guess at how long something takes."""
    time.sleep(max(0.0, moment + seconds - time.monotonic()))


def history_replies(t: Team, i: int, session: str, want: int, timeout: float = 10.0) -> list[str]:
    """The session's replies as instance `i` reads them, in time order, once it has `want` of them (each
    instance writes its rows in batches, off the request path)."""
    assert wait_for(lambda: len(t.history(i, session)) >= want, timeout, 0.1), t.history(i, session)
    return [r["reply"] for r in sorted(t.history(i, session), key=lambda r: r["ts"])]


def assert_nothing_secret_shared(t: Team, marker: str) -> None:
    """The scan read something real (the namespace's state, the history table's rows), and no key."""
    assert t.redis_keys(), "nothing under the namespace in Redis: the scan would prove nothing"
    assert marker.encode() in t.pg_dump(), (
        "the history rows are not in the dump: the scan would prove nothing"
    )
    assert t.leaks() == {}


# -- acceptance 1: three instances, one state -------------------------------------------------------------


def test_key_limited_through_a_is_skipped_by_b_and_c(team: Team, ofake: KeyedOpenRouter) -> None:
    body = {"error": {"code": 429, "message": "Rate limit exceeded"}}
    ofake.enqueue_for(KEYS[0], Script(status=429, json_body=body, headers={"retry-after": "600"}))
    # A's turn in the shared rotation may be key 2: ask until key 1 has met its 429 (A then uses key 2).
    for n in range(3):
        assert team.chat(0, f"limit {n}", "rl", LIMITED) == f"echo: limit {n}"
        if ofake.served:
            break
    assert [(name, status) for _, name, status in ofake.served] == [("OPENROUTER_API_KEY_1", 429)]
    wait_after(ofake.served[0][0], PROPAGATION)
    since = time.monotonic()
    # Four requests: the shared rotation alone would hand key 1 to two of them.
    for n, i in enumerate((1, 2, 1, 2)):
        assert team.chat(i, f"skip {n}", "rl", LIMITED) == f"echo: skip {n}"
    assert used_keys(ofake, LIMITED, since) == ["2"] * 4
    for i in (1, 2):
        left = cooling_lines(status(team, i), "openrouter", LIMITED)
        assert set(left) == {"OPENROUTER_API_KEY_1"} and left["OPENROUTER_API_KEY_1"][0] > 500


def test_session_model_set_through_a_applies_on_b_and_c(team: Team, ofake: KeyedOpenRouter) -> None:
    """B and C already serve the session from their local views: the change must reach those views before
    A answers the command, or B's very next request would go out with the old model."""
    for i in (1, 2):
        assert team.chat(i, f"before {i}", "pick") == f"echo: before {i}"
    assert f"model set to openrouter:{CHOSEN}" in team.chat(0, f"!/set(model=openrouter:{CHOSEN})", "pick")
    assert len(chat_bodies(ofake)) == 2  # a command-only message is answered by the proxy
    for i in (1, 2, 0):
        assert team.chat(i, f"on {i}", "pick") == f"echo: on {i}"
    assert team.chat(1, "elsewhere", "other") == "echo: elsewhere"
    assert [b["model"] for b in chat_bodies(ofake)] == [MODEL, MODEL, CHOSEN, CHOSEN, CHOSEN, MODEL]


def test_history_of_a_session_is_complete_from_every_instance(team: Team) -> None:
    texts = [f"spread {n}" for n in range(6)]
    for n, text in enumerate(texts):
        assert team.chat(n % 3, text, "spread", stream=bool(n % 2)) == f"echo: {text}"
    for i in range(3):
        assert history_replies(team, i, "spread", len(texts)) == [f"echo: {t}" for t in texts]
    rows = sorted(team.history(2, "spread"), key=lambda r: r["ts"])
    assert [r["stream"] for r in rows] == [bool(n % 2) for n in range(6)]
    assert {r["key_name"] for r in rows} <= {"OPENROUTER_API_KEY_1", "OPENROUTER_API_KEY_2"}


def test_previous_response_id_made_on_a_continues_on_b(team: Team, ofake: KeyedOpenRouter) -> None:
    with client(team[0], "resp") as a, client(team[1], "resp") as b, client(team[2], "resp") as c:
        r1 = a.responses.create(model=MODEL, input="my name is Ada")
        r2 = b.responses.create(model=MODEL, input="what is my name?", previous_response_id=r1.id)
        assert (r2.previous_response_id, r2.output_text) == (r1.id, "echo: what is my name?")
        sent = [(m["role"], text_of(m.get("content"))) for m in chat_bodies(ofake)[-1]["messages"]]
        assert sent == [
            ("user", "my name is Ada"),
            ("assistant", "echo: my name is Ada"),
            ("user", "what is my name?"),
        ]
        r3 = c.responses.create(model=MODEL, input="thanks", previous_response_id=r2.id)
    assert r3.output_text == "echo: thanks"
    assert len(chat_bodies(ofake)[-1]["messages"]) == 5


def test_route_created_through_c_is_used_by_a_and_survives_a_restart(
    team: Team, ofake: KeyedOpenRouter
) -> None:
    make_route(team, 2, "teamroute")
    done = time.monotonic()
    wait_after(done, PROPAGATION)
    assert team.chat(0, "routed", "route-user", "teamroute") == "echo: routed"
    assert chat_bodies(ofake)[-1]["model"] == ROUTED
    team.restart()  # fresh processes in fresh folders: only Redis remembers the route
    for i in range(3):
        assert team.chat(i, f"after {i}", "route-user", "teamroute") == f"echo: after {i}"
    assert [b["model"] for b in chat_bodies(ofake)[-3:]] == [ROUTED] * 3
    assert "teamroute" in team.chat(1, "!/list-failover-routes", "ops")


def test_no_key_in_redis_or_postgres(team: Team) -> None:
    """Acceptance 4, after the runs above, with a key pasted into a prompt too (the proxy redacts it)."""
    marker = "scan-marker-e2e"
    assert team.chat(1, f"{marker} {KEYS[0]}", "scan").startswith(f"echo: {marker}")
    assert wait_for(lambda: len(team.history(0, "scan")) == 1, 10, 0.1)
    kinds = {key.split(b":")[1] for key in team.redis_keys()}
    assert {b"config", b"sessions", b"session", b"cooldowns", b"turn"} <= kinds, kinds
    assert_nothing_secret_shared(team, marker)


# -- acceptance 3: a server goes away mid-run ----------------------------------------------------------------


def redis_line(text: str) -> str:
    found = re.search(r"^shared state \(Redis\): (.*)$", text, re.M)
    assert found, text
    return found[1]


def test_redis_stopped_and_restarted_mid_run(outage_servers: Any, ofake: KeyedOpenRouter) -> None:
    own_redis, own_pg = outage_servers
    t = Team(Servers(own_redis.url, own_pg.url), ofake, 2)
    try:
        t.start()
        with Load(t, "load") as load:
            load.more(5)
            own_redis.stop()
            assert wait_for(lambda: all(redis_line(status(t, i)).startswith("DEGRADED") for i in (0, 1)), 10)
            # Changes made through A while Redis is away: they must reach B once it is back.
            assert "model set to" in t.chat(0, f"!/set(model=openrouter:{OUTAGE})", "outage")
            make_route(t, 0, "outroute")
            load.more(10)
            own_redis.start()  # empty: no persistence, so the instances must push their state back
            assert wait_for(lambda: all(redis_line(status(t, i)) == "ok" for i in (0, 1)), RESYNC, 0.1)
            load.more(5)
        assert load.failures == []
        for p in t.proxies:  # the outage was real, and each instance said so once and came back
            assert p.log.count("serving from local state until it answers") == 1, p.log
            assert "reachable again; state resynchronised" in p.log, p.log
        assert wait_for(lambda: "outroute" in t.chat(1, "!/list-failover-routes", "ops"), PROPAGATION * 10)
        assert t.chat(1, "routed", "anyone", "outroute") == "echo: routed"
        assert t.chat(1, "mine", "outage") == "echo: mine"
        assert [b["model"] for b in chat_bodies(ofake)[-2:]] == [ROUTED, OUTAGE]
        assert_nothing_secret_shared(t, "load 0")
    finally:
        t.stop()


def test_postgres_stopped_and_restarted_mid_run(outage_servers: Any, ofake: KeyedOpenRouter) -> None:
    own_redis, own_pg = outage_servers
    t = Team(Servers(own_redis.url, own_pg.url), ofake, 2)
    try:
        t.start()
        with Load(t, "load") as load:
            load.more(5)
            own_pg.stop()
            load.more(15)  # served while PostgreSQL is away: their rows wait in the buffer
            own_pg.start()
            load.more(5)
        assert load.failures == []
        # The outage was real: each instance buffered rows, then wrote them (at its next attempt).
        assert wait_for(lambda: all("PostgreSQL answers again" in p.log for p in t.proxies), 15, 0.1)
        for p in t.proxies:
            assert "item(s) wait in the buffer" in p.log, p.log
        want = [f"echo: {text}" for text in load.answered]
        for i in (0, 1):
            assert history_replies(t, i, "load", len(want), timeout=15) == want
        assert_nothing_secret_shared(t, "load 0")
    finally:
        t.stop()

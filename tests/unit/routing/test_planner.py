"""Router.plan over the memory CooldownStore without a proxy: policies, rotation, skipping resting keys,
exhaustion; route parsing."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from addons.backends.gemini import seconds_until_pacific_midnight
from addons.routing.planner import Attempt, Router
from addons.routing.routes import MAX_ROUTE_ELEMENTS, MAX_ROUTES, parse_route, parse_routes
from addons.settings import KeyRing
from addons.stores.base import ActiveCooldown
from addons.stores.memory import MemoryCooldowns
from tests.unit.stores.sync import Sync

G, OR = "gemini", "openrouter"


def ring(backend: str, n: int) -> KeyRing:
    prefix = {G: "GEMINI_API_KEY", OR: "OPENROUTER_API_KEY"}[backend]
    return KeyRing(
        backend=backend,
        names=tuple(f"{prefix}_{i}" for i in range(1, n + 1)),
        secrets=tuple(SecretStr(f"secret-{backend}-{i}-xxxxxxxx") for i in range(1, n + 1)),
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cooldowns(clock: Clock) -> Sync:
    return Sync(MemoryCooldowns(clock))


@pytest.fixture
def router(cooldowns: Sync) -> Sync:
    return Sync(Router({G: ring(G, 3), OR: ring(OR, 2)}, cooldowns.target))


def gk(i: int) -> str:
    return f"GEMINI_API_KEY_{i}"


def ok(i: int) -> str:
    return f"OPENROUTER_API_KEY_{i}"


def steps(attempts: list[Attempt]) -> list[tuple[str, str, str]]:
    return [(a.backend, a.model, a.key) for a in attempts]


ROUTE = [(G, "g1"), (OR, "o1"), (G, "g2")]


def test_single_model_rotates_round_robin(router: Sync) -> None:
    firsts = [router.plan([(G, "m")]).attempts[0].key for _ in range(6)]
    assert firsts == [gk(1), gk(2), gk(3), gk(1), gk(2), gk(3)]
    assert [a.key for a in router.plan([(G, "m")]).attempts] == [gk(1), gk(2), gk(3)]


def test_policy_k_uses_every_key_of_the_first_element_only(router: Sync) -> None:
    assert steps(router.plan(ROUTE, "k").attempts) == [(G, "g1", gk(1)), (G, "g1", gk(2)), (G, "g1", gk(3))]


def test_policy_m_uses_each_element_once(router: Sync) -> None:
    assert steps(router.plan(ROUTE, "m").attempts) == [(G, "g1", gk(1)), (OR, "o1", ok(1)), (G, "g2", gk(1))]


def test_policy_km_is_element_by_element(router: Sync) -> None:
    assert steps(router.plan(ROUTE, "km").attempts) == [
        (G, "g1", gk(1)), (G, "g1", gk(2)), (G, "g1", gk(3)),
        (OR, "o1", ok(1)), (OR, "o1", ok(2)),
        (G, "g2", gk(1)), (G, "g2", gk(2)), (G, "g2", gk(3)),
    ]  # fmt: skip


def test_policy_mk_is_key_by_key(router: Sync) -> None:
    assert steps(router.plan(ROUTE, "mk").attempts) == [
        (G, "g1", gk(1)), (OR, "o1", ok(1)), (G, "g2", gk(1)),
        (G, "g1", gk(2)), (OR, "o1", ok(2)), (G, "g2", gk(2)),
        (G, "g1", gk(3)), (G, "g2", gk(3)),  # openrouter has only two keys
    ]  # fmt: skip


def test_each_plan_moves_every_backend_of_the_route_on_by_one(router: Sync) -> None:
    router.plan(ROUTE, "mk")
    assert steps(router.plan(ROUTE, "m").attempts) == [(G, "g1", gk(2)), (OR, "o1", ok(2)), (G, "g2", gk(2))]


def test_resting_key_is_skipped_for_that_model_only(router: Sync, clock: Clock, cooldowns: Sync) -> None:
    cooldowns.cool(G, "g1", gk(1), 30, "rate limited (429)")
    assert steps(router.plan(ROUTE, "km").attempts)[:3] == [
        (G, "g1", gk(2)),
        (G, "g1", gk(3)),
        (OR, "o1", ok(1)),
    ]
    clock.now += 31
    assert cooldowns.remaining(G, "g1", gk(1)) == 0
    # The rotation went on after the key the first plan used (gk 2).
    assert router.plan([(G, "g1")]).attempts[0].key == gk(3)
    assert [a.key for a in router.plan([(G, "g1")]).attempts] == [gk(1), gk(2), gk(3)]


def test_a_resting_keys_turns_are_spread_evenly(router: Sync, cooldowns: Sync) -> None:
    cooldowns.cool(G, "g1", gk(2), 300, "rate limited (429)")
    first = [router.plan([(G, "g1")]).attempts[0].key for _ in range(30)]
    assert {k: first.count(k) for k in set(first)} == {gk(1): 15, gk(3): 15}


def test_policy_m_takes_the_first_usable_key_of_each_element(router: Sync, cooldowns: Sync) -> None:
    cooldowns.cool(G, "g1", gk(1), 30, "429")
    cooldowns.cool(G, "g1", gk(2), 30, "429")
    assert steps(router.plan(ROUTE, "m").attempts) == [(G, "g1", gk(3)), (OR, "o1", ok(1)), (G, "g2", gk(1))]


def test_retired_key_is_skipped_for_every_model(router: Sync, clock: Clock, cooldowns: Sync) -> None:
    cooldowns.retire(OR, ok(1), None, "credits exhausted (402)")
    for model in ("a", "b", "c"):
        assert [a.key for a in router.plan([(OR, model)]).attempts] == [ok(2)]
    clock.now += 10**9
    assert cooldowns.remaining(OR, "a", ok(1)) == math.inf
    assert ActiveCooldown("openrouter", "*", ok(1), math.inf, "credits exhausted (402)") in cooldowns.active()


def test_retirement_for_a_while(router: Sync, clock: Clock, cooldowns: Sync) -> None:
    cooldowns.retire(OR, ok(2), 60, "credits exhausted (402)")
    clock.now += 61
    assert [a.key for a in router.plan([(OR, "a")]).attempts] == [ok(1), ok(2)]


def test_everything_resting_reports_the_shortest_wait_and_names(
    router: Sync, clock: Clock, cooldowns: Sync
) -> None:
    for i, seconds in ((1, 30.0), (2, 12.2), (3, 50.0)):
        cooldowns.cool(G, "g1", gk(i), seconds, "429")
    clock.now += 2
    plan = router.plan([(G, "g1")])
    assert plan.attempts == []
    assert plan.retry_after == pytest.approx(10.2)
    assert sorted(plan.exhausted) == [
        f"gemini:g1 with {gk(1)} (28 s)",
        f"gemini:g1 with {gk(2)} (11 s)",
        f"gemini:g1 with {gk(3)} (48 s)",
    ]
    assert not any("secret" in e for e in plan.exhausted)


def test_retired_keys_are_named_and_do_not_set_the_wait(router: Sync, cooldowns: Sync) -> None:
    cooldowns.retire(OR, ok(1), None, "credits exhausted (402)")
    cooldowns.cool(OR, "a", ok(2), 30, "429")
    plan = router.plan([(OR, "a")])
    assert plan.retry_after == pytest.approx(30)
    assert sorted(plan.exhausted) == [
        f"openrouter:a with {ok(1)} (retired)",
        f"openrouter:a with {ok(2)} (30 s)",
    ]
    cooldowns.retire(OR, ok(2), None, "credits exhausted (402)")
    assert router.exhausted([Attempt(OR, "b", ok(1)), Attempt(OR, "b", ok(2))])[0] == 0.0  # no end in sight


def test_a_route_is_usable_while_any_element_is(router: Sync, cooldowns: Sync) -> None:
    for i in (1, 2, 3):
        cooldowns.cool(G, "g1", gk(i), 30, "429")
    assert steps(router.plan(ROUTE[:2], "km").attempts) == [(OR, "o1", ok(1)), (OR, "o1", ok(2))]
    assert router.plan(ROUTE[:2], "k").attempts == []  # k never leaves the first element


def test_backend_without_keys_plans_nothing(clock: Clock) -> None:
    router = Sync(Router({G: ring(G, 2), OR: KeyRing(backend=OR)}, MemoryCooldowns(clock)))
    plan = router.plan([(OR, "x")])
    assert plan.attempts == [] and plan.retry_after is None and plan.exhausted == []
    assert steps(router.plan([(OR, "x"), (G, "g")], "m").attempts) == [(G, "g", gk(1))]


def test_longer_cooldown_wins_over_shorter(clock: Clock) -> None:
    cd = Sync(MemoryCooldowns(clock))
    cd.cool(G, "m", gk(1), 40, "first")
    cd.cool(G, "m", gk(1), 5, "second")
    assert cd.remaining(G, "m", gk(1)) == 40
    cd.cool(G, "m", gk(1), 90, "third")
    assert cd.remaining(G, "m", gk(1)) == 90
    clock.now += 100
    assert cd.active() == []


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"policy": "x", "elements": []}, "policy 'x'"),
        ({"elements": "gemini:a"}, "must be a list"),
        ({"elements": ["claude:opus"]}, "element 'claude:opus'"),
        ({"elements": ["gemini:"]}, "element 'gemini:'"),
        ("km", "expected an object"),
    ],
)
def test_parse_route_refuses_bad_routes(data: object, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_route("r", data, (G, OR))


def test_parse_route_and_back() -> None:
    r = parse_route(
        "r-1.x", {"policy": "mk", "elements": ["openrouter:meta/llama:free", "gemini:g"]}, (G, OR)
    )
    assert r.elements == [(OR, "meta/llama:free"), (G, "g")]
    assert r.to_json() == {"policy": "mk", "elements": ["openrouter:meta/llama:free", "gemini:g"]}
    assert r.describe() == "r-1.x [mk]: openrouter:meta/llama:free, gemini:g"
    with pytest.raises(ValueError, match="route name"):
        parse_route("bad name", {}, (G, OR))


def test_pacific_midnight() -> None:
    tz = ZoneInfo("America/Los_Angeles")
    assert seconds_until_pacific_midnight(datetime(2025, 3, 1, 23, 0, tzinfo=tz)) == 3600
    assert (
        seconds_until_pacific_midnight(datetime(2025, 3, 1, 23, 59, 30, tzinfo=tz)) == 60
    )  # at least a minute
    utc = datetime(2025, 7, 1, 12, 0, tzinfo=ZoneInfo("UTC"))  # 05:00 PDT
    assert seconds_until_pacific_midnight(utc) == 19 * 3600


def test_duplicate_elements_plan_each_key_once(router: Sync) -> None:
    # However a route came to repeat an element, one request calls each (backend, model, key) once.
    plan = router.plan([(OR, "o1"), (OR, "o1"), (G, "g1"), (OR, "o1")], "km")
    assert len(steps(plan.attempts)) == len(set(steps(plan.attempts))) == 2 + 3


def test_parse_route_drops_duplicates_and_caps_elements() -> None:
    r = parse_route("r", {"elements": ["gemini:g", "openrouter:o", "gemini:g"]}, (G, OR))
    assert r.elements == [(G, "g"), (OR, "o")]
    many = [f"gemini:m{i}" for i in range(MAX_ROUTE_ELEMENTS)]
    assert len(parse_route("r", {"elements": many + many}, (G, OR)).elements) == MAX_ROUTE_ELEMENTS
    with pytest.raises(ValueError, match=f"at most {MAX_ROUTE_ELEMENTS}"):
        parse_route("r", {"elements": [*many, "gemini:one-more"]}, (G, OR))


def test_parse_routes_keeps_at_most_max_routes_and_names_the_bad_ones() -> None:
    data = {f"r{i}": {"elements": ["gemini:g"]} for i in range(MAX_ROUTES + 5)}
    data = {"bad": {"policy": "zz"}, **data}
    routes, problems = parse_routes(data, (G, OR))
    assert len(routes) == MAX_ROUTES and "bad" not in routes
    assert any("route bad" in p for p in problems)
    assert any(f"more than {MAX_ROUTES} routes" in p for p in problems)

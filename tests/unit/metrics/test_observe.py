"""observe(): what one finished request adds to each metric; InFlight: each request once, however it ends;
the exposition as Prometheus' own parser reads it."""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families

from addons.frontends.base import Reply, StreamTranscript
from addons.metrics.observe import Finished, InFlight, observe
from addons.metrics.registry import Metrics
from addons.records import AttemptRecord, CallRecord, Usage
from addons.stores.base import ActiveCooldown

OR = "openrouter"
MODEL = "openai/gpt-4o-mini"
KEY1, KEY2 = "OPENROUTER_API_KEY_1", "OPENROUTER_API_KEY_2"


def value(m: Metrics, name: str, **labels: str) -> float:
    """A sample's value; 0 for a series never observed."""
    return m.registry.get_sample_value(f"llm_intercept_{name}", labels) or 0.0


def answered(*attempts: AttemptRecord, **fields: object) -> CallRecord:
    last = attempts[-1]
    rec = CallRecord(session="s1", stream=False, attempts=list(attempts), backend=last.backend,
                     model=last.model, key=last.key, status=last.status)  # fmt: skip
    for name, v in fields.items():
        setattr(rec, name, v)
    return rec


def attempt(key: str, status: int, error: str | None = None) -> AttemptRecord:
    return AttemptRecord(OR, MODEL, key, status, error, 10.0)


def test_an_answered_call_counts_request_latency_tokens_and_cost() -> None:
    m = Metrics()
    usage = Usage(prompt_tokens=120, completion_tokens=30, cached_tokens=100, reasoning_tokens=12)
    rec = answered(attempt(KEY1, 200), usage=usage, cost_usd=0.0125, ttft_ms=420.0)
    observe(m, Finished("chat", 200, 1.5, rec))
    labels = {"endpoint": "chat", "backend": OR, "model": MODEL}
    assert value(m, "requests_total", **labels, key=KEY1, code="200") == 1
    assert value(m, "request_duration_seconds_count", **labels) == 1
    assert value(m, "request_duration_seconds_sum", **labels) == 1.5
    assert value(m, "request_duration_seconds_bucket", **labels, le="1.0") == 0
    assert value(m, "request_duration_seconds_bucket", **labels, le="2.0") == 1
    assert value(m, "time_to_first_token_seconds_sum", **labels) == 0.42
    keyed = {"backend": OR, "model": MODEL, "key": KEY1}
    for kind, n in (("prompt", 120), ("completion", 30), ("cached", 100), ("reasoning", 12)):
        assert value(m, "tokens_total", **keyed, kind=kind) == n
    assert value(m, "cost_usd_total", **keyed) == 0.0125
    assert value(m, "unpriced_requests_total", **keyed) == 0
    assert b"llm_intercept_errors_total{" not in m.exposition(())


def test_an_unknown_cost_is_counted_apart_never_as_zero() -> None:
    m = Metrics()
    observe(m, Finished("messages", 200, 0.3, answered(attempt(KEY2, 200), usage=Usage(5, 7))))
    keyed = {"backend": OR, "model": MODEL, "key": KEY2}
    assert value(m, "unpriced_requests_total", **keyed) == 1
    assert m.registry.get_sample_value("llm_intercept_cost_usd_total", keyed) is None
    assert value(m, "tokens_total", **keyed, kind="prompt") == 5
    assert m.registry.get_sample_value("llm_intercept_tokens_total", {**keyed, "kind": "cached"}) is None
    # A failed call cost nothing and is not unpriced either.
    observe(m, Finished("messages", 503, 0.3, answered(attempt(KEY2, 503, "overloaded"))))
    assert value(m, "unpriced_requests_total", **keyed) == 1


def test_failovers_are_the_attempts_moved_past_labelled_by_the_failed_one() -> None:
    m = Metrics()
    rec = answered(attempt(KEY1, 429, "rate limited"), attempt(KEY2, 502, "upstream_bad_response"),
                   attempt(KEY1, 200), cost_usd=0.001)  # fmt: skip
    observe(m, Finished("chat", 200, 2.0, rec))
    assert value(m, "failovers_total", backend=OR, model=MODEL, key=KEY1, code="429") == 1
    assert value(m, "failovers_total", backend=OR, model=MODEL, key=KEY2, code="502") == 1
    assert value(m, "failovers_total", backend=OR, model=MODEL, key=KEY1, code="200") == 0
    # The request is counted once, under the attempt that answered.
    assert value(m, "requests_total", endpoint="chat", backend=OR, model=MODEL, key=KEY1, code="200") == 1


def test_errors_by_class_with_and_without_an_upstream() -> None:
    m = Metrics()
    observe(m, Finished("chat", 400, 0.001))  # a malformed body: no record
    observe(m, Finished("chat", 413, 0.001))
    observe(m, Finished("model", 401, 0.001))
    observe(m, Finished("chat", 402, 0.01, CallRecord(session="s", stream=False)))  # a budget refusal
    give_up = answered(attempt(KEY1, 502, "upstream_bad_response"), attempt(KEY2, 502, "empty_answer"))
    observe(m, Finished("responses", 502, 3.0, give_up))
    assert value(m, "errors_total", endpoint="chat", backend="", **{"class": "client_error"}) == 1
    assert value(m, "errors_total", endpoint="chat", backend="", **{"class": "too_large"}) == 1
    assert value(m, "errors_total", endpoint="models", backend="", **{"class": "unauthorised"}) == 1
    assert value(m, "errors_total", endpoint="chat", backend="", **{"class": "budget_exceeded"}) == 1
    assert (
        value(m, "errors_total", endpoint="responses", backend=OR, **{"class": "upstream_bad_response"}) == 1
    )
    assert value(m, "requests_total", endpoint="chat", backend="", model="", key="", code="400") == 1
    assert value(m, "failovers_total", backend=OR, model=MODEL, key=KEY1, code="502") == 1


def test_a_stream_that_broke_off_and_a_client_that_left() -> None:
    m = Metrics()
    rec = answered(attempt(KEY1, 200), ttft_ms=80.0)
    observe(m, Finished("chat", 200, 4.0, rec, broke_off=True))
    observe(m, Finished("chat", 499, 9.0, answered(attempt(KEY2, 200), ttft_ms=90.0)))
    assert value(m, "errors_total", endpoint="chat", backend=OR, **{"class": "stream_broken"}) == 1
    assert value(m, "errors_total", endpoint="chat", backend=OR, **{"class": "client_closed"}) == 1
    assert value(m, "requests_total", endpoint="chat", backend=OR, model=MODEL, key=KEY2, code="499") == 1
    assert value(m, "time_to_first_token_seconds_count", endpoint="chat", backend=OR, model=MODEL) == 2
    # A stream the client left mid-way was answered: its cost is unknown, not zero.
    assert value(m, "unpriced_requests_total", backend=OR, model=MODEL, key=KEY2) == 1


def test_guard_trips_and_repairs() -> None:
    m = Metrics()
    rec = answered(attempt(KEY1, 200), guards=["repetition", "tool_loop"], repairs=2, cost_usd=0.0)
    observe(m, Finished("chat", 200, 1.0, rec))
    observe(m, Finished("chat", 200, 1.0, answered(attempt(KEY1, 200), guards=["repetition"], repairs=1)))
    assert value(m, "loop_guard_trips_total", backend=OR, model=MODEL, guard="repetition") == 2
    assert value(m, "loop_guard_trips_total", backend=OR, model=MODEL, guard="tool_loop") == 1
    assert value(m, "tool_call_repairs_total", backend=OR, model=MODEL) == 3


def test_a_proxy_answer_names_no_backend_and_a_bogus_cost_is_not_counted() -> None:
    m = Metrics()
    observe(m, Finished("chat", 200, 0.01, CallRecord(session="s", stream=True, answered_by="proxy")))
    assert value(m, "requests_total", endpoint="chat", backend="", model="", key="", code="200") == 1
    observe(m, Finished("chat", 200, -0.5, answered(attempt(KEY1, 200), cost_usd=math.nan)))
    assert value(m, "unpriced_requests_total", backend=OR, model=MODEL, key=KEY1) == 1
    assert value(m, "request_duration_seconds_sum", endpoint="chat", backend=OR, model=MODEL) == 0  # clock


def test_in_flight_ends_each_request_once() -> None:
    flights = InFlight()
    assert flights.end("f0", 200, 1.0) is None  # never begun: not ours, or a scrape
    flights.begin("f1", "chat")
    transcript = StreamTranscript(completion={"choices": [], "error": {"message": "cut", "code": None}})
    rec = CallRecord(session="s", stream=True)
    flights.answered("f1", Reply(200, stream=None, transcript=transcript, record=rec))
    done = flights.end("f1", 200, 2.5)
    assert done == Finished("chat", 200, 2.5, rec, broke_off=True)
    assert flights.end("f1", 499, 3.0) is None  # an error hook after the response hook counts nothing
    flights.begin("f2", "messages")
    assert flights.end("f2", 413, 0.01) == Finished("messages", 413, 0.01)  # refused on its head
    flights.answered("f3", Reply(200))  # never begun: ignored
    assert flights.end("f3", 200, 1.0) is None


def test_the_exposition_parses_and_shows_the_cooldowns_running_at_scrape_time() -> None:
    m = Metrics()
    observe(m, Finished("chat", 200, 0.7, answered(attempt(KEY1, 200), cost_usd=0.5)))
    m.cooldown_started(OR, MODEL, KEY2, "cooldown")
    m.cooldown_started(OR, "*", KEY1, "retirement")
    active = [
        ActiveCooldown(OR, MODEL, KEY2, 25.0, "rate limited"),
        ActiveCooldown(OR, "*", KEY1, math.inf, "402"),
    ]
    families = {f.name: f for f in text_string_to_metric_families(m.exposition(active).decode())}
    gauge = families["llm_intercept_cooldowns_active"]
    assert gauge.type == "gauge"
    assert {(s.labels["model"], s.labels["key"], s.value) for s in gauge.samples} == {
        (MODEL, KEY2, 1),
        ("*", KEY1, 1),
    }
    counters = [s for s in families["llm_intercept_cooldowns"].samples if s.name.endswith("_total")]
    assert {(s.labels["kind"], s.labels["model"]) for s in counters} == {
        ("cooldown", MODEL),
        ("retirement", "*"),
    }
    assert families["llm_intercept_request_duration_seconds"].type == "histogram"
    assert families["llm_intercept_cost_usd"].type == "counter"
    # The next scrape shows what runs then: nothing.
    after = {f.name: f for f in text_string_to_metric_families(m.exposition([]).decode())}
    assert after["llm_intercept_cooldowns_active"].samples == []
    assert all(f.name.startswith("llm_intercept_") for f in after.values())

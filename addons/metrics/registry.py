"""The metric objects, in a registry of the proxy's own (not prometheus_client's global one, which would
also carry the process and GC collectors of whatever imported it, and would clash on a script reload).

Labels stay bounded: route names, backend, model and key *name* (never a key), status code and error
class; no session ids, projects or client-chosen strings. The app carries one `Metrics` across option
changes, so counters run from the process start."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from addons.stores.base import ActiveCooldown

PATH = "/metrics"
# The compatibility text format, which every Prometheus server reads (generate_latest writes it).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "llm_intercept_"
MODEL = ("backend", "model")
KEYED = ("backend", "model", "key")
# A chat answer takes from well under a second (a cached short reply) to minutes (a long reasoning one);
# the first token comes sooner.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 45, 60, 90, 120)
TTFT_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 20, 30, 60, 120)


class _ActiveCooldowns(Collector):
    """One series per cooldown running at scrape time (the store's view, handed over by the scrape)."""

    def __init__(self) -> None:
        self.now: Sequence[ActiveCooldown] = ()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            PREFIX + "cooldowns_active",
            "Keys resting right now, one series each (1); model '*': the key is retired for every model.",
            labels=KEYED,
        )
        for c in self.now:
            family.add_metric((c.backend, c.model, c.key), 1)
        yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        route = ("endpoint", *MODEL)

        def counter(name: str, doc: str, labels: tuple[str, ...]) -> Counter:
            return Counter(PREFIX + name, doc, labels, registry=r)

        self.requests = counter(
            "requests",
            "Requests answered on the proxy's API paths (scrapes aside), by the status the client got "
            "(499: it left before the answer ended).",
            (*route, "key", "code"),
        )
        self.duration = Histogram(
            PREFIX + "request_duration_seconds", "From a request's first byte to its answer's last.", route,
            registry=r, buckets=LATENCY_BUCKETS,
        )  # fmt: skip
        self.ttft = Histogram(
            PREFIX + "time_to_first_token_seconds",
            "Streamed calls: from the call's start to the first content the client got (keep-alives aside).",
            route, registry=r, buckets=TTFT_BUCKETS,
        )  # fmt: skip
        self.tokens = counter(
            "tokens",
            "Tokens of the answers, as OpenAI counts them: cached ones are part of the prompt, reasoning "
            "ones part of the completion.",
            (*KEYED, "kind"),
        )
        self.cost = counter("cost_usd", "Cost of the calls whose cost is known.", KEYED)
        self.unpriced = counter(
            "unpriced_requests", "Answered calls of unknown cost (never as 0 USD).", KEYED
        )
        self.errors = counter(
            "errors", "Requests that ended in an error, by class.", ("endpoint", "backend", "class")
        )
        self.failovers = counter(
            "failovers",
            "Attempts moved past to try another key, model or backend, by the failed attempt and its status.",
            (*KEYED, "code"),
        )
        self.cooldowns = counter(
            "cooldowns",
            "Cooldowns started (kind cooldown) and keys retired (kind retirement, model '*').",
            (*KEYED, "kind"),
        )
        self.guard_trips = counter("loop_guard_trips", "Loop-guard trips, by guard.", (*MODEL, "guard"))
        self.repairs = counter("tool_call_repairs", "Tool-call arguments repaired into valid JSON.", MODEL)
        self._active = _ActiveCooldowns()
        r.register(self._active)

    def cooldown_started(self, backend: str, model: str, key: str, kind: str) -> None:
        self.cooldowns.labels(backend, model, key, kind).inc()

    def exposition(self, active: Sequence[ActiveCooldown]) -> bytes:
        """The text a scrape gets, with the cooldowns running now."""
        self._active.now = active
        return generate_latest(self.registry)

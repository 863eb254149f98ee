"""One process's Prometheus metrics: what its worker, server and store did, kept in memory.

Counters and histograms are incremented where the work happens, after it is committed: no
store writes and no queries on the hot path. The store's tally (failed transactions, outage
time, runs its cancels and timeouts ended) is read when scraped. Each `Metrics` has its own
registry, so that several engines in one process (tests) do not collide. The gauges read from
the database at scrape time (queues, flow control, workers) are the server's
(`server.metrics`), so that they are reported once, not by every process.

A run ends in exactly one process: its worker's, which commits COMPLETED or FAILED, or the
one whose cancel or timeout ended it (`StoreTally`). Summed over every process scraped,
`stepline_runs_ended_total` counts each ended run once.
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Iterable, Iterator
from typing import Generic, Literal, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric

from stepline.store.tally import StoreTally

StepOutcome = Literal["completed", "retried", "failed"]
"""How a step attempt ended: done, failed with a retry scheduled, or failed for good."""

_Metric = TypeVar("_Metric", Counter, Histogram)

# Runs may sleep or wait for days; steps are mostly short, but a step may run for an hour.
RUN_SECONDS_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400)
STEP_SECONDS_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class _Children(Generic[_Metric]):
    """A labelled metric's children, each found once: `labels()` locks and checks every call.

    The hooks run once or twice per step; a child found stays valid (nothing removes one).
    """

    def __init__(self, metric: _Metric) -> None:
        self._metric: _Metric = metric
        self._found: dict[tuple[str, ...], _Metric] = {}

    def __call__(self, *values: str) -> _Metric:
        child = self._found.get(values)
        if child is None:  # two threads may both look it up: `labels()` gives both the same
            child = self._found[values] = self._metric.labels(*values)
        return child


class Metrics:
    """A process's counters, histograms and gauges, in a registry of their own.

    Args:
        tally: The store's tally, reported with them (errors, outage time, runs ended by
            cancels and timeouts); None for none.

    Attributes:
        registry: Where they are registered (`collect` reads it: a server or a worker's
            `--metrics-port` exposes it).
        tally: The store's tally, as given.
    """

    def __init__(self, tally: StoreTally | None = None) -> None:
        registry = self.registry = CollectorRegistry()
        self.runs_started = Counter(
            "stepline_runs_started",
            "Runs started (claimed for the first time) by this process's worker.",
            ["function"],
            registry=registry,
        )
        self.run_duration = Histogram(
            "stepline_run_duration_seconds",
            "From a run's start to its end (sleeps and waits included), for the runs this "
            "process's worker ended (COMPLETED or FAILED).",
            ["function", "status"],
            buckets=RUN_SECONDS_BUCKETS,
            registry=registry,
        )
        self.step_duration = Histogram(
            "stepline_step_duration_seconds",
            "How long each step attempt (step.run) executed on this process's worker.",
            ["function"],
            buckets=STEP_SECONDS_BUCKETS,
            registry=registry,
        )
        self.step_attempts = Counter(
            "stepline_step_attempts",
            "Step attempts executed here, by outcome: completed, retried (failed, a retry is "
            "scheduled) or failed (failed for good).",
            ["function", "outcome"],
            registry=registry,
        )
        self.intake_events = Counter(
            "stepline_intake_events",
            "Events accepted by this server, by where they came in (intake: /e/{key}; "
            "api: POST /v1/events).",
            ["via"],
            registry=registry,
        )
        self.requests_rejected = Counter(
            "stepline_requests_rejected",
            "Requests this server refused (4xx, 503), by surface (intake, api, dashboard) and "
            "reason.",
            ["surface", "reason"],
            registry=registry,
        )
        self.sse_clients = Gauge(
            "stepline_sse_clients",
            "Server-sent event streams open on this server (dashboard pages, API watchers).",
            registry=registry,
        )
        ProcessCollector(registry=registry)
        self._started = _Children(self.runs_started)
        self._run_seconds = _Children(self.run_duration)
        self._step_seconds = _Children(self.step_duration)
        self._attempts = _Children(self.step_attempts)
        self._intake = _Children(self.intake_events)
        self.tally = tally
        self._ended: Tally[tuple[str, str]] = Tally()
        self._lock = threading.Lock()
        registry.register(_Ended(self))

    def collect(self) -> Iterable[Metric]:
        """Every metric of this process (a prometheus-client collector)."""
        return self.registry.collect()

    # -- hooks: each an increment in memory ---------------------------------------------------

    def run_started(self, function_id: str) -> None:
        """A run was claimed for the first time here."""
        self._started(function_id).inc()

    def run_ended(self, function_id: str, status: str, seconds: float | None) -> None:
        """This process's worker committed a run's end (COMPLETED, FAILED) after `seconds`."""
        with self._lock:
            self._ended[(function_id, status)] += 1
        if seconds is not None:
            self._run_seconds(function_id, status).observe(max(0.0, seconds))

    def step_attempt(self, function_id: str, outcome: StepOutcome, seconds: float) -> None:
        """A step attempt ended here (its outcome committed) after executing `seconds`."""
        self._attempts(function_id, outcome).inc()
        self._step_seconds(function_id).observe(max(0.0, seconds))

    def events_accepted(self, via: str, count: int) -> None:
        """This server accepted `count` events through `via` ("intake", "api")."""
        self._intake(via).inc(count)

    def runs_ended(self) -> dict[tuple[str, str], int]:
        """Runs ended by this process, by (function id, status): its worker's and its store's."""
        with self._lock:
            ended = Tally(self._ended)
        if self.tally is not None:
            ended.update(self.tally.runs_ended())
        return dict(ended)


class _Ended:
    """Reads what is counted outside prometheus-client: ended runs and the store's tally."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        ended = CounterMetricFamily(
            "stepline_runs_ended",
            "Runs this process ended, by status: COMPLETED and FAILED by its worker, "
            "CANCELLED (and FAILED by a timeout) by its cancels and timeouts.",
            labels=["function", "status"],
        )
        for (function_id, status), count in sorted(self._metrics.runs_ended().items()):
            ended.add_metric([function_id, status], count)
        yield ended
        tally = self._metrics.tally
        if tally is None:
            return
        yield CounterMetricFamily(
            "stepline_store_errors",
            "Database transactions of this process that failed (conflicts not counted).",
            value=tally.errors,
        )
        yield CounterMetricFamily(
            "stepline_store_transactions",
            "Write transactions this process committed.",
            value=tally.transactions,
        )
        yield CounterMetricFamily(
            "stepline_store_statements",
            "SQL statements this process ran (reads included; BEGIN and COMMIT not counted).",
            value=tally.statements,
        )
        yield CounterMetricFamily(
            "stepline_store_outage_seconds",
            "Seconds the database was unavailable to this process (from its first failure "
            "to its next success).",
            value=tally.outage_seconds,
        )

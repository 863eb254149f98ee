"""A per-customer concurrency limit across real worker processes: with two workers of four slots
each, no more than two runs of one customer ever execute at the same instant and every run
completes; a customer with no traffic starts at once while another one's runs wait for slots."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from stepline.store.base import Store
from tests.scale.limits_app import EVENT, PER_CUSTOMER
from tests.scale.support import Cluster, eventually, registered, status_counts

LIMITS_APP = Path(__file__).with_name("limits_app.py")
WORKERS = 2
SLOTS = 4
RUNS = 200
CUSTOMERS = ["acme", "globex", "initech", "umbrella"]
BUSY_RUNS = 6
BUSY_SECONDS = 4.0
QUIET_START_SECONDS = 2.0


@dataclass(frozen=True)
class Execution:
    """One execution of the `hold` step, as the step recorded it."""

    run: str
    customer: str
    start: float
    end: float


def executions(path: Path) -> list[Execution]:
    """Every finished execution; each run's start and end lines paired."""
    starts: dict[str, tuple[str, float]] = {}
    found = []
    for line in path.read_text().splitlines() if path.exists() else []:
        what, run, customer, _pid, at = line.split()
        if what == "start":
            assert run not in starts, f"run {run} executed twice"
            starts[run] = (customer, float(at))
        else:
            found.append(Execution(run, customer, starts[run][1], float(at)))
    return found


def started(path: Path) -> dict[str, tuple[str, float]]:
    """Each run whose step has started: its customer and start time."""
    marks = path.read_text().splitlines() if path.exists() else []
    return {
        run: (customer, float(at))
        for what, run, customer, _pid, at in (line.split() for line in marks)
        if what == "start"
    }


def most_at_once(runs: list[Execution]) -> int:
    """The most executions in progress at any instant (one ending as another starts: no overlap)."""
    marks = sorted([(e.start, 1) for e in runs] + [(e.end, -1) for e in runs])
    now = peak = 0
    for _, change in marks:
        now += change
        peak = max(peak, now)
    return peak


def start(store: Store, cluster: Cluster) -> None:
    """The server, then WORKERS workers of `tests/scale/limits_app.py`, all started."""
    cluster.server()
    args = ["worker", str(LIMITS_APP), "--db", cluster.db, "--slots", str(SLOTS)]
    workers = [cluster.spawn("worker", *args, "--grace-seconds", "10") for _ in range(WORKERS)]
    eventually(
        lambda: (
            registered(store, {w.pid for w in workers})
            and "orders" in {fn.id for fn in store.list_functions()}
        ),
        what=f"{WORKERS} workers to register",
        timeout=60,  # a loaded machine takes seconds to start each process
    )


def send(cluster: Cluster, data: list[dict[str, Any]]) -> None:
    """POST one event per item of `data`, in one request."""
    events = [{"name": EVENT, "data": item} for item in data]
    response = httpx.post(f"{cluster.url}/e/test-key", json=events, timeout=30)
    response.raise_for_status()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_never_more_than_two_runs_of_a_customer_at_once_across_worker_processes(
    store: Store, cluster: Cluster
) -> None:
    start(store, cluster)
    orders = [
        {"customer": CUSTOMERS[n % len(CUSTOMERS)], "seconds": 0.05 + 0.05 * (n % 3)}
        for n in range(RUNS)
    ]

    for first in range(0, RUNS, 50):
        send(cluster, orders[first : first + 50])

    eventually(
        lambda: status_counts(store) == {"COMPLETED": RUNS},
        what=f"{RUNS} runs to complete",
        timeout=90,
        pause=0.2,
    )
    done = executions(cluster.effects)
    assert len(done) == RUNS, cluster.logs()
    by_customer: dict[str, list[Execution]] = defaultdict(list)
    for execution in done:
        by_customer[execution.customer].append(execution)
    peaks = {customer: most_at_once(runs) for customer, runs in by_customer.items()}
    assert max(peaks.values()) == PER_CUSTOMER, peaks
    assert most_at_once(done) > PER_CUSTOMER, "customers did not run side by side"


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_quiet_customer_starts_at_once_while_a_busy_one_waits_for_slots(
    store: Store, cluster: Cluster
) -> None:
    start(store, cluster)
    send(cluster, [{"customer": "busy", "seconds": BUSY_SECONDS}] * BUSY_RUNS)
    eventually(
        lambda: len(started(cluster.effects)) == PER_CUSTOMER,
        what="the busy customer to fill its slots",
        timeout=20,
    )
    queued = BUSY_RUNS - PER_CUSTOMER
    assert status_counts(store) == {"RUNNING": PER_CUSTOMER, "QUEUED": queued}

    sent = time.time()
    send(cluster, [{"customer": "quiet", "seconds": 0.05}])

    eventually(
        lambda: status_counts(store).get("COMPLETED") == 1,
        what="the quiet customer's run to complete",
        timeout=20,
    )
    starts = started(cluster.effects)
    [quiet_start] = [at for customer, at in starts.values() if customer == "quiet"]
    busy_before = [
        at for customer, at in starts.values() if customer == "busy" and at < quiet_start
    ]
    assert len(busy_before) == PER_CUSTOMER, "the quiet run waited for a busy run to end"
    assert quiet_start - sent < QUIET_START_SECONDS, f"started {quiet_start - sent:.1f}s after"

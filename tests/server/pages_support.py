"""A registered (not started) engine with a known past: finished runs in two of the last 24
hours, cron state, workers and events, for the function, workers and events pages' tests.

Nothing runs by itself: no worker claims, no scheduler ticks, and the clock stands still, so
what the pages show is exactly what is seeded here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.engine.events import build_event, new_id
from stepline.engine.routing import Routing
from stepline.store.base import NewRun, RunDelta, RunStatus, Store, WorkerRecord

NOW = datetime(2026, 1, 2, 10, 20, tzinfo=UTC)
CRON = stepline.cron("30 2 * * *", tz="UTC")
REAL_TICK = datetime(2026, 1, 2, 2, 30, tzinfo=UTC)
FIRST_SIGHT = datetime(2026, 1, 1, 20, 15, 42, 123000, tzinfo=UTC)  # off the schedule
# (start, seconds, status): two hours of the window with runs, and one run before it.
FINISHED: list[tuple[datetime, float, RunStatus]] = [
    (datetime(2026, 1, 1, 5, 0, tzinfo=UTC), 1.0, "COMPLETED"),  # before the window
    (datetime(2026, 1, 2, 8, 5, tzinfo=UTC), 2.0, "COMPLETED"),
    (datetime(2026, 1, 2, 8, 7, tzinfo=UTC), 10.0, "FAILED"),
    (datetime(2026, 1, 2, 9, 10, tzinfo=UTC), 4.0, "COMPLETED"),
]
EVENTS = [
    ("shop/order.paid", {"order": 1, "note": "x" * 300}),
    ("shop/order.refunded", {"order": 2}),
    ("stock/changed", {"sku": "A-1"}),
]


def report_app() -> stepline.App:
    """One function, "report": a cron and an event trigger, 4 retries, flow control."""
    app = stepline.App("pages-test")

    @app.function(
        id="report",
        name="Nightly report",
        triggers=[stepline.event("report/requested"), CRON],
        retries=4,
        concurrency=[stepline.Concurrency(limit=2)],
        throttle=stepline.Throttle(limit=10, period="1m"),
    )
    def report(ctx: stepline.Context) -> None:
        return None

    return app


def finish(store: Store, start: datetime, seconds: float, status: RunStatus) -> str:
    """A run of "report" claimed at `start` and ended `seconds` later."""
    run = NewRun(id=new_id(), function_id="report", trigger_kind="manual")
    run_id = store.create_run(run, [], start, Routing())
    [claimed] = store.claim_runs("seeder", 1, start, 3600, ["report"])
    end = start + timedelta(seconds=seconds)
    error = '{"name": "Boom", "message": "no"}' if status == "FAILED" else None
    output = "null" if status == "COMPLETED" else None
    store.finish_run(
        claimed.lease, status, RunDelta(), end, output=output, error=error, routing=Routing()
    )
    return run_id


def worker(worker_id: str, heartbeat: datetime, slots: int = 4) -> WorkerRecord:
    """A worker record as a worker process registers it."""
    return WorkerRecord(
        id=worker_id,
        hostname="host-1",
        pid=4242,
        slots=slots,
        inflight=0,
        functions=("report",),
        started_at=heartbeat - timedelta(minutes=5),
        heartbeat_at=heartbeat,
        heartbeat_seconds=2.0,
    )


def seed(store: Store) -> None:
    """The past described above; "w-live" holds one run, "w-dead" went silent 10 min ago."""
    for start, seconds, status in FINISHED:
        finish(store, start, seconds, status)
    store.fire_cron_tick("report", CRON.schedule, FIRST_SIGHT, None, FIRST_SIGHT)
    store.register_worker(worker("w-dead", NOW - timedelta(minutes=10)))
    store.register_worker(worker("w-live", NOW - timedelta(seconds=1)))
    store.create_run(
        NewRun(id=new_id(), function_id="report", trigger_kind="manual"), [], NOW, Routing()
    )
    store.claim_runs("w-live", 1, NOW, 3600, ["report"])
    store.heartbeat_worker("w-live", NOW - timedelta(seconds=1), inflight=1)
    events = [build_event({"name": n, "data": d}, now=NOW) for n, d in EVENTS]
    store.ingest_events(events, Routing(), NOW)


def tick(store: Store) -> None:
    """The schedule's real tick at 02:30 (a paused function's would be recorded the same)."""
    store.fire_cron_tick("report", CRON.schedule, REAL_TICK, None, REAL_TICK)


def seeded_engine(store: Store, clock: FakeClock) -> Engine:
    """An engine over the seeded `store`, registered but not started, at `NOW`."""
    clock.set(NOW)
    engine = Engine(report_app(), db=store, clock=clock, upgrade=False)
    engine.register()
    seed(store)
    return engine

"""Stopping the work, not just the record: when a run is cancelled (by request, a `cancel_on`
event or a `cancel` singleton) or times out while one of its steps executes, an `async` step is
cancelled at its current `await` and a `def` step sees `ctx.cancelled` set, within a second;
the step after it never starts and the slot is free again. The worker hears of the end from
the store at once (with the default lease, its heartbeat comes only every 3.3 s); on
PostgreSQL also when another process ended the run. A run nobody cancels, and a context built
outside the engine, keep the flag clear."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.engine.worker import WorkerSettings
from stepline.sdk.step import AsyncStep, Step, StepBackend
from stepline.store.base import Store
from tests.conftest import FAST_SETTINGS
from tests.engine.support import eventually, settle, start
from tests.scale.support import Cluster, database_of, read_effects, registered

# Default leases: a heartbeat every 3.3 s of real time, so it cannot be what noticed the end.
SETTINGS = replace(FAST_SETTINGS, worker=WorkerSettings(poll_seconds=0.05))
BOUND_SECONDS = 1.0  # from the run's end to the step seeing it
STOP = stepline.CancelOn("job/stop", match="data.job")
ONE_AT_A_TIME = stepline.Singleton(key="event.data.job", mode="cancel")
CANCEL_APP = Path(__file__).with_name("cancel_app.py")


@dataclass
class Probe:
    """What the steps report: when they started and stopped (`time.monotonic()`), and calls.

    `released` is set when the test ends, so a `def` step that never saw the flag returns.
    """

    entered: threading.Event = field(default_factory=threading.Event)
    stopped: list[float] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    released: threading.Event = field(default_factory=threading.Event)

    def note(self, name: str) -> None:
        self.calls[name] += 1

    def loop(self, ctx: stepline.Context[Step]) -> None:
        self.entered.set()
        while not ctx.cancelled.wait(0.05):
            if self.released.is_set():
                return
        self.stopped.append(time.monotonic())

    async def nap(self) -> None:
        self.entered.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.stopped.append(time.monotonic())
            raise


@pytest.fixture
def probe() -> Iterator[Probe]:
    found = Probe()
    yield found
    found.released.set()


def sync_app(probe: Probe) -> stepline.App:
    app = stepline.App("in-flight")

    @app.function(
        id="job",
        triggers=[stepline.event("job/start")],
        cancel_on=STOP,
        singleton=ONE_AT_A_TIME,
        timeout="3s",
    )
    def job(ctx: stepline.Context[Step]) -> bool:
        if ctx.event["data"].get("quick"):
            return ctx.step.run("check", ctx.cancelled.is_set)
        ctx.step.run("loop", probe.loop, ctx)
        ctx.step.run("after", probe.note, "after")
        return False

    return app


def async_app(probe: Probe) -> stepline.App:
    app = stepline.App("in-flight")

    async def flag(ctx: stepline.Context[AsyncStep]) -> bool:
        return ctx.cancelled.is_set()

    @app.function(
        id="job",
        triggers=[stepline.event("job/start")],
        cancel_on=STOP,
        singleton=ONE_AT_A_TIME,
        timeout="3s",
    )
    async def job(ctx: stepline.Context[AsyncStep]) -> bool:
        if ctx.event["data"].get("quick"):
            return await ctx.step.run("check", flag, ctx)
        await ctx.step.run("nap", probe.nap)
        await ctx.step.run("after", probe.note, "after")
        return False

    return app


BUILDERS = pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])
Builder = Callable[[Probe], stepline.App]


def begin(engine: Engine, probe: Probe) -> str:
    """Start a run and wait until its long step executes; its id."""
    run_id = start(engine, "job/start", {"job": "j1"})
    assert probe.entered.wait(10), "the long step did not start"
    return run_id


def assert_stopped(engine: Engine, probe: Probe, run_id: str, since: float, status: str) -> None:
    """The step stopped within the bound of `since`, the run ended, the next step never ran."""
    stopped = eventually(lambda: probe.stopped, what="the step to stop")[0]
    assert stopped - since < BOUND_SECONDS, f"stopped {stopped - since:.2f}s after the end"
    assert engine.wait_for_run(run_id, 10).status == status
    settle(engine)  # the slot is free again
    assert probe.calls["after"] == 0
    assert engine.worker.abandoned == 0
    assert [step.id for step in engine.get_run(run_id).steps] == []


@BUILDERS
def test_cancelling_a_run_stops_its_step_within_a_second(
    build: Builder, make_engine: Callable[..., Engine], probe: Probe
) -> None:
    engine = make_engine(build(probe), settings=SETTINGS)
    run_id = begin(engine, probe)

    since = time.monotonic()
    engine.cancel(run_id)

    assert_stopped(engine, probe, run_id, since, "CANCELLED")


@BUILDERS
def test_a_cancel_on_event_stops_the_step_within_a_second(
    build: Builder, make_engine: Callable[..., Engine], probe: Probe
) -> None:
    engine = make_engine(build(probe), settings=SETTINGS)
    run_id = begin(engine, probe)

    since = time.monotonic()
    [event_id] = engine.send({"name": "job/stop", "data": {"job": "j1"}})

    assert_stopped(engine, probe, run_id, since, "CANCELLED")
    assert engine.store.get_run(run_id).cancelled_by == event_id


@BUILDERS
def test_a_cancel_singleton_stops_the_replaced_runs_step_within_a_second(
    build: Builder, make_engine: Callable[..., Engine], probe: Probe
) -> None:
    engine = make_engine(build(probe), settings=SETTINGS)
    run_id = begin(engine, probe)

    since = time.monotonic()
    replacement = start(engine, "job/start", {"job": "j1", "quick": True})

    assert_stopped(engine, probe, run_id, since, "CANCELLED")
    run = engine.wait_for_run(replacement, 10)
    assert (run.status, json.loads(run.output or "")) == ("COMPLETED", False), run


@BUILDERS
def test_a_run_timing_out_mid_step_stops_the_step_within_a_second(
    build: Builder, make_engine: Callable[..., Engine], clock: FakeClock, probe: Probe
) -> None:
    engine = make_engine(build(probe), settings=SETTINGS)
    run_id = begin(engine, probe)

    since = time.monotonic()
    clock.advance(3)  # past the run's timeout; the scheduler ends it at its next pass

    assert_stopped(engine, probe, run_id, since, "FAILED")
    assert json.loads(engine.store.get_run(run_id).error or "")["name"] == "RunTimeout"


@BUILDERS
def test_a_run_nobody_cancels_sees_the_flag_clear(
    build: Builder, make_engine: Callable[..., Engine], probe: Probe
) -> None:
    engine = make_engine(build(probe), settings=SETTINGS)
    run_id = start(engine, "job/start", {"job": "j1", "quick": True})

    run = engine.wait_for_run(run_id, 10)

    assert (run.status, json.loads(run.output or "")) == ("COMPLETED", False), run


class _Hooks:
    def log(self, level: str, message: str) -> None:
        pass

    def progress(self, done: float, total: float | None, message: str | None) -> None:
        pass

    def count(self, name: str, n: float) -> None:
        pass


def test_a_context_built_outside_the_engine_has_a_flag_never_set() -> None:
    ctx = stepline.Context(
        events=[{"name": "job/start", "data": {}}],
        run_id="r-1",
        attempt=0,
        step=Step(cast(StepBackend, None)),  # a unit test's own step double
        hooks=_Hooks(),
    )

    assert ctx.cancelled.is_set() is False
    assert ctx.cancelled.wait(0.01) is False


@pytest.mark.slow
@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_a_run_cancelled_by_another_process_stops_its_def_step_within_a_second(
    store: Store, tmp_path: Path
) -> None:
    cluster = Cluster(database_of(store), tmp_path)
    try:
        # A long lease (heartbeats every 20 s): only the notification can stop the step soon.
        worker = cluster.spawn(
            "worker", "worker", str(CANCEL_APP), "--db", cluster.db, "--slots", "2",
            "--lease-seconds", "60", "--grace-seconds", "5",
        )  # fmt: skip
        eventually(
            lambda: (
                registered(store, {worker.pid})
                and any(fn.id == "looper" for fn in store.list_functions())
            ),
            what="the worker to register",
            timeout_seconds=20,
        )
        client = stepline.Client.local(cluster.db)
        try:
            run_id = client.invoke("looper")
            eventually(lambda: began(cluster, run_id, "loop"), what="the step to start")

            since = time.time()
            client.cancel(run_id)

            stopped = eventually(lambda: began(cluster, run_id, "stopped"), what="the stop")
            assert stopped - since < BOUND_SECONDS, f"stopped {stopped - since:.2f}s after"
            assert store.get_run(run_id).status == "CANCELLED"
        finally:
            client.close()
        threading.Event().wait(0.3)
        assert began(cluster, run_id, "after") is None, "the next step must not start"
        assert worker.poll() is None, cluster.logs()
    finally:
        cluster.close()


def began(cluster: Cluster, run_id: str, step: str) -> float | None:
    """When the worker process recorded `step` of the run (unix time), if it did."""
    times = [e.at for e in read_effects(cluster.effects) if (e.run, e.step) == (run_id, step)]
    return times[0] if times else None

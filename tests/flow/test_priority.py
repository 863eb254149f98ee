"""`priority` gives a run a head start in the queue: a run with 120 s starts before runs queued
up to 120 s before it, not before older ones; values are clamped to ±600 s. Shown on a worker
with one slot, kept busy while the runs queue up."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine, EngineSettings
from stepline.engine.retry import RetryPolicy
from stepline.engine.worker import WorkerSettings
from stepline.sdk.step import Step
from tests.engine.support import eventually, only_run
from tests.flow.support import completed

# One slot; a lease far longer than the clock moves here, so the busy run keeps its slot.
ONE_SLOT = EngineSettings(
    worker=WorkerSettings(slots=1, lease_seconds=3600.0, poll_seconds=0.05),
    retry=RetryPolicy(base_seconds=1.0, factor=2.0, cap_seconds=60.0, jitter=0.0),
    scheduler_poll_seconds=0.05,
)


@dataclass
class Probe:
    """Holds the one slot until released; records the order in which ranked runs start."""

    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    started: list[str] = field(default_factory=list)

    def hold(self) -> None:
        self.entered.set()
        self.release.wait(30)


def ranked_app(probe: Probe) -> stepline.App:
    app = stepline.App("flow")

    @app.function(id="busy", triggers=[stepline.event("flow/busy")])
    def busy(ctx: stepline.Context[Step]) -> None:
        ctx.step.run("hold", probe.hold)

    @app.function(
        id="vip",
        triggers=[stepline.event("flow/vip")],
        priority=stepline.Priority(run="event.data.vip ? 120 : 0"),
    )
    def vip(ctx: stepline.Context[Step]) -> None:
        probe.started.append(ctx.event["data"]["name"])

    @app.function(
        id="boosted",
        triggers=[stepline.event("flow/boosted")],
        priority=stepline.Priority(run="event.data.boost"),
    )
    def boosted(ctx: stepline.Context[Step]) -> None:
        probe.started.append(ctx.event["data"]["name"])

    return app


@pytest.fixture
def probe() -> Iterator[Probe]:
    probe = Probe()
    yield probe
    probe.release.set()


@pytest.fixture
def busy_engine(make_engine: Callable[..., Engine], probe: Probe) -> Engine:
    """An engine whose one slot is taken by a run holding it until `probe.release`."""
    engine = make_engine(ranked_app(probe), settings=ONE_SLOT)
    only_run(engine, engine.send({"name": "flow/busy", "data": {}})[0])
    eventually(probe.entered.is_set, what="the busy run to take the slot")
    return engine


def queue(engine: Engine, name: str, event: str, **data: object) -> str:
    """Queue a run named `name` behind the busy one; its id."""
    [event_id] = engine.send({"name": event, "data": {"name": name, **data}})
    return only_run(engine, event_id).id


def release(engine: Engine, probe: Probe, run_ids: list[str]) -> list[str]:
    """Free the slot, let every queued run finish; the order they started in."""
    threading.Event().wait(0.3)  # a moment in which a wrong start would show
    assert probe.started == [], "nothing starts while the only slot is busy"
    probe.release.set()
    for run_id in run_ids:
        completed(engine, run_id)
    return probe.started


def test_a_head_start_passes_runs_queued_less_than_that_before(
    busy_engine: Engine, probe: Probe, clock: FakeClock
) -> None:
    run_ids = [queue(busy_engine, "old plain", "flow/vip", vip=False)]
    clock.advance(100)
    run_ids.append(queue(busy_engine, "vip 100 s later", "flow/vip", vip=True))
    clock.advance(50)
    run_ids.append(queue(busy_engine, "vip 150 s later", "flow/vip", vip=True))
    run_ids.append(queue(busy_engine, "plain 150 s later", "flow/vip", vip=False))

    assert release(busy_engine, probe, run_ids) == [
        "vip 100 s later",
        "old plain",
        "vip 150 s later",
        "plain 150 s later",
    ]


def test_priorities_are_clamped_to_600_seconds_either_way(
    busy_engine: Engine, probe: Probe, clock: FakeClock
) -> None:
    run_ids = [
        queue(busy_engine, "plain", "flow/boosted", boost=0),
        queue(busy_engine, "sunk", "flow/boosted", boost=-10_000),
    ]
    clock.advance(599)
    run_ids.append(queue(busy_engine, "boosted 599 s later", "flow/boosted", boost=10_000))
    run_ids.append(queue(busy_engine, "plain 599 s later", "flow/boosted", boost=0))
    clock.advance(2)
    run_ids.append(queue(busy_engine, "boosted 601 s later", "flow/boosted", boost=10_000))

    assert release(busy_engine, probe, run_ids) == [
        "boosted 599 s later",
        "plain",
        "boosted 601 s later",
        "plain 599 s later",
        "sunk",
    ]

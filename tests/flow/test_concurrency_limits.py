"""Concurrency limits: at most `limit` runs of a key execute at once, across the function (an
int), per key value, under two limits together, or shared by functions (scope "all"). Runs over
the limit stay QUEUED and start, in priority-then-age order, as slots free; a sleeping run holds
no slot. `def` and `async def` functions alike."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step
from tests.engine.support import eventually, parked, start

BUILDERS = pytest.mark.parametrize("asynchronous", [False, True], ids=["def", "async"])
QUIET_SECONDS = 0.3  # how long a run must stay queued to count as held back


class Probe:
    """Step bodies report here: which labels started, in what order, and which overlapped.

    A label passed to `hold` blocks in its step until `release`d; others return at once.
    """

    def __init__(self, *held: str) -> None:
        self._lock = threading.Lock()
        self._gates = {label: threading.Event() for label in held}
        self._running: set[str] = set()
        self.started: list[str] = []
        self.together: list[frozenset[str]] = []  # what was executing as each step began

    def work(self, label: str) -> str:
        with self._lock:
            self.started.append(label)
            self._running.add(label)
            self.together.append(frozenset(self._running))
            gate = self._gates.get(label)
        if gate is not None:
            gate.wait(10)
        with self._lock:
            self._running.discard(label)
        return label

    def release(self, *labels: str) -> None:
        for label in labels:
            self._gates[label].set()

    def release_all(self) -> None:
        self.release(*self._gates)

    def has_started(self, *labels: str) -> bool:
        with self._lock:
            return set(labels) <= set(self.started)

    def peak(self, group: Iterable[str]) -> int:
        """The most labels of `group` seen executing at once."""
        members = set(group)
        with self._lock:
            return max((len(seen & members) for seen in self.together), default=0)


def declare(
    app: stepline.App, probe: Probe, fn_id: str, *, asynchronous: bool, **options: Any
) -> None:
    """A function on event `flow/<fn_id>`: an optional 1h sleep (data.nap), then step "work"."""
    triggers = [stepline.event(f"flow/{fn_id}")]
    if asynchronous:

        async def work(label: str) -> str:
            return await asyncio.to_thread(probe.work, label)

        @app.function(id=fn_id, triggers=triggers, **options)
        async def run_async(ctx: stepline.Context[AsyncStep]) -> str:
            if ctx.event["data"].get("nap"):
                await ctx.step.sleep("nap", "1h")
            return await ctx.step.run("work", work, ctx.event["data"]["label"])

    else:

        @app.function(id=fn_id, triggers=triggers, **options)
        def run_sync(ctx: stepline.Context[Step]) -> str:
            if ctx.event["data"].get("nap"):
                ctx.step.sleep("nap", "1h")
            return ctx.step.run("work", probe.work, ctx.event["data"]["label"])


def send(engine: Engine, fn_id: str, label: str, **data: Any) -> str:
    """Trigger `fn_id` for the run labelled `label`; its run id."""
    return start(engine, f"flow/{fn_id}", {"label": label, **data})


def began(probe: Probe, *labels: str) -> None:
    eventually(lambda: probe.has_started(*labels), what=f"{', '.join(labels)} to start")


def held_back(engine: Engine, probe: Probe, runs: dict[str, str]) -> None:
    """The labelled runs stay QUEUED, their steps not started, over a short real-time pause."""
    threading.Event().wait(QUIET_SECONDS)
    statuses = {label: engine.store.get_run(run_id).status for label, run_id in runs.items()}
    assert statuses == dict.fromkeys(runs, "QUEUED")
    assert not set(runs) & set(probe.started), probe.started


def completed(engine: Engine, runs: Iterable[str]) -> None:
    for run_id in runs:
        run = engine.wait_for_run(run_id, 20)
        assert run.status == "COMPLETED", run.error


@BUILDERS
def test_one_run_per_key_at_a_time_while_another_key_runs_at_once(
    asynchronous: bool, make_engine: Callable[..., Engine]
) -> None:
    probe = Probe("a1", "a2", "b1")
    app = stepline.App("flow")
    limit = stepline.Concurrency(limit=1, key="event.data.script")
    declare(app, probe, "sync", asynchronous=asynchronous, concurrency=limit)
    engine = make_engine(app)

    a1 = send(engine, "sync", "a1", script="a")
    began(probe, "a1")
    a2 = send(engine, "sync", "a2", script="a")
    b1 = send(engine, "sync", "b1", script="b")

    began(probe, "b1")
    held_back(engine, probe, {"a2": a2})
    probe.release("a1")
    began(probe, "a2")
    probe.release_all()
    completed(engine, [a1, a2, b1])
    assert probe.peak(["a1", "a2"]) == 1
    assert probe.peak(["a1", "b1"]) == 2, "another key's run did not wait"


@BUILDERS
def test_a_sleeping_run_holds_no_slot(
    asynchronous: bool, make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    probe = Probe()
    app = stepline.App("flow")
    limit = stepline.Concurrency(limit=1, key="event.data.script")
    declare(app, probe, "sync", asynchronous=asynchronous, concurrency=limit)
    engine = make_engine(app)
    sleeper = send(engine, "sync", "sleeper", script="a", nap=True)
    parked(engine, sleeper, "SLEEPING")

    other = send(engine, "sync", "other", script="a")

    completed(engine, [other])
    assert engine.store.get_run(sleeper).detail == "SLEEPING"
    clock.advance(3600)
    completed(engine, [sleeper])
    assert probe.started == ["other", "sleeper"]


@BUILDERS
def test_runs_over_the_limit_wait_queued_then_start_in_priority_then_age_order(
    asynchronous: bool, make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    probe = Probe("first")
    app = stepline.App("flow")
    declare(
        app,
        probe,
        "sync",
        asynchronous=asynchronous,
        concurrency=stepline.Concurrency(limit=1, key="event.data.script"),
        priority=stepline.Priority(run="event.data.priority"),
    )
    engine = make_engine(app)
    first = send(engine, "sync", "first", script="a", priority=0)
    began(probe, "first")
    # Half a second apart (within the first run's lease); claim order is age minus priority.
    waiting = {}
    for label, priority in [("a", 0), ("b", 0), ("c", 2), ("d", -2), ("e", 0)]:
        clock.advance(0.5)
        waiting[label] = send(engine, "sync", label, script="a", priority=priority)

    held_back(engine, probe, waiting)
    probe.release("first")

    completed(engine, [first, *waiting.values()])
    # c: 1.5s - 2 = -0.5; a: 0.5; b: 1.0; e: 2.5; d: 2.0 + 2 = 4.0
    assert probe.started == ["first", "c", "a", "b", "e", "d"]
    assert probe.peak(probe.started) == 1


@BUILDERS
def test_an_int_limits_the_whole_function(
    asynchronous: bool, make_engine: Callable[..., Engine]
) -> None:
    probe = Probe("r1", "r2", "r3")
    app = stepline.App("flow")
    declare(app, probe, "sync", asynchronous=asynchronous, concurrency=2)
    engine = make_engine(app)
    runs = {label: send(engine, "sync", label, script=label) for label in ("r1", "r2")}
    began(probe, "r1", "r2")

    runs["r3"] = send(engine, "sync", "r3", script="r3")
    held_back(engine, probe, {"r3": runs["r3"]})
    probe.release("r1")
    began(probe, "r3")
    probe.release_all()
    more = [send(engine, "sync", f"m{n}") for n in range(10)]

    completed(engine, [*runs.values(), *more])
    assert probe.peak(probe.started) == 2


@BUILDERS
def test_two_limits_hold_together_function_wide_and_per_key(
    asynchronous: bool, make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    probe = Probe("x1", "x2", "y1", "z1", "w1")
    app = stepline.App("flow")
    limits = [
        stepline.Concurrency(limit=3),
        stepline.Concurrency(limit=1, key="event.data.customer"),
    ]
    declare(app, probe, "sync", asynchronous=asynchronous, concurrency=limits)
    engine = make_engine(app)
    runs = {}
    for label in ("x1", "x2", "y1", "z1", "w1"):
        clock.advance(0.1)  # distinct ages: x2 is older than w1
        runs[label] = send(engine, "sync", label, customer=label[0])

    began(probe, "x1", "y1", "z1")
    held_back(engine, probe, {"x2": runs["x2"], "w1": runs["w1"]})
    probe.release("x1")  # frees customer x and one of the three: x2 is older than w1
    began(probe, "x2")
    held_back(engine, probe, {"w1": runs["w1"]})
    probe.release("y1")
    began(probe, "w1")
    probe.release_all()

    completed(engine, runs.values())
    assert probe.peak(runs) == 3
    assert probe.peak(["x1", "x2"]) == 1


@BUILDERS
def test_scope_all_shares_the_key_between_functions(
    asynchronous: bool, make_engine: Callable[..., Engine]
) -> None:
    probe = Probe("export-a", "import-a", "import-b")
    app = stepline.App("flow")
    shared = stepline.Concurrency(limit=1, key="event.data.account", scope="all")
    for fn_id in ("export", "import"):
        declare(app, probe, fn_id, asynchronous=asynchronous, concurrency=shared)
    engine = make_engine(app)
    export_a = send(engine, "export", "export-a", account="a")
    began(probe, "export-a")

    import_a = send(engine, "import", "import-a", account="a")
    import_b = send(engine, "import", "import-b", account="b")
    began(probe, "import-b")
    held_back(engine, probe, {"import-a": import_a})
    probe.release("export-a")
    began(probe, "import-a")
    probe.release_all()

    completed(engine, [export_a, import_a, import_b])
    assert probe.peak(["export-a", "import-a"]) == 1

"""`step.parallel`: branches as queue items of their own, results in order, retried alone."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

import stepline
from stepline.engine.engine import Engine, EngineSettings
from stepline.engine.retry import RetryPolicy
from stepline.engine.worker import WorkerSettings
from stepline.sdk.step import AsyncStep, Step
from tests.engine.support import eventually, start
from tests.flow.support import completed

EVENT = "scrape/done"
NO_BACKOFF = EngineSettings(
    worker=WorkerSettings(slots=4, lease_seconds=10, poll_seconds=0.05),
    retry=RetryPolicy(base_seconds=0, cap_seconds=0, jitter=0),
    scheduler=False,
)


class Probe:
    """Counts calls; `flaky` fails its first call; `both` blocks until two branches are in."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.inside = 0
        self.lock = threading.Lock()
        self.both_in = threading.Event()
        self.release = threading.Event()

    def enrich(self, name: str) -> str:
        with self.lock:
            self.calls[name] += 1
            self.inside += 1
            if self.inside >= 2:
                self.both_in.set()
        self.both_in.wait(5)
        return name.upper()

    def blocked(self, name: str) -> str:
        with self.lock:
            self.calls[name] += 1
        self.release.wait(10)
        return name.upper()

    def flaky(self, name: str) -> str:
        with self.lock:
            self.calls[name] += 1
            first = self.calls[name] == 1
        if first:
            raise RuntimeError("first try fails")
        return name.upper()


def sync_app(probe: Probe) -> stepline.App:
    app = stepline.App("scrape")

    @app.function(id="enrich", triggers=[stepline.event(EVENT)])
    def enrich(ctx: stepline.Context[Step]) -> Any:
        before = ctx.step.run("before", lambda: "ok")
        work = getattr(probe, ctx.event["data"]["kind"])
        results = ctx.step.parallel(
            "enrich",
            [
                lambda: ctx.step.run("fetch", work, "a"),
                lambda: ctx.step.run("fetch", work, "b"),
            ],
        )
        after = ctx.step.run("after", lambda: "done")
        return [before, *results, after]

    return app


def async_app(probe: Probe) -> stepline.App:
    app = stepline.App("scrape")

    @app.function(id="enrich", triggers=[stepline.event(EVENT)])
    async def enrich(ctx: stepline.Context[AsyncStep]) -> Any:
        before = await ctx.step.run("before", lambda: "ok")
        work = getattr(probe, ctx.event["data"]["kind"])
        results = await ctx.step.parallel(
            "enrich",
            [  # the probe blocks: off the event loop, as async code must
                lambda: ctx.step.run("fetch", asyncio.to_thread, work, "a"),
                lambda: ctx.step.run("fetch", asyncio.to_thread, work, "b"),
            ],
        )
        after = await ctx.step.run("after", lambda: "done")
        return [before, *results, after]

    return app


BUILDERS = pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])


@BUILDERS
def test_branches_run_at_the_same_time_and_return_in_order(
    build: Callable[[Probe], stepline.App], make_engine: Callable[..., Engine]
) -> None:
    probe = Probe()
    engine = make_engine(build(probe), settings=NO_BACKOFF)

    run = completed(engine, start(engine, EVENT, {"kind": "enrich"}))

    assert probe.both_in.is_set(), "both branches were executing at once"
    assert run.output == '["ok","A","B","done"]'
    assert probe.calls == Counter({"a": 1, "b": 1})
    branches = [r for r in engine.list_runs() if r.parent_run_id == run.id]
    assert sorted(r.status for r in branches) == ["COMPLETED", "COMPLETED"]
    assert {r.trigger_kind for r in branches} == {"parallel"}
    steps = {s.id: s.status for s in engine.get_run(run.id).steps}
    assert steps["enrich[0]/fetch"] == steps["enrich[1]/fetch"] == "completed"


@BUILDERS
def test_a_failed_branch_is_retried_on_its_own(
    build: Callable[[Probe], stepline.App], make_engine: Callable[..., Engine]
) -> None:
    probe = Probe()
    engine = make_engine(build(probe), settings=NO_BACKOFF)

    run = completed(engine, start(engine, EVENT, {"kind": "flaky"}))

    assert run.output == '["ok","A","B","done"]'
    assert probe.calls == Counter({"a": 2, "b": 2}), "each branch retried alone, once"
    detail = engine.get_run(run.id)
    assert {s.id: s.attempts for s in detail.steps if "/" in s.id} == {
        "enrich[0]/fetch": 2,
        "enrich[1]/fetch": 2,
    }


@BUILDERS
def test_cancelling_the_run_cancels_its_branches(
    build: Callable[[Probe], stepline.App], make_engine: Callable[..., Engine]
) -> None:
    probe = Probe()
    engine = make_engine(build(probe), settings=NO_BACKOFF)
    run_id = start(engine, EVENT, {"kind": "blocked"})
    eventually(lambda: sum(probe.calls.values()) == 2, what="both branches to be executing")
    branches = [r for r in engine.list_runs() if r.parent_run_id == run_id]

    engine.cancel(run_id)
    probe.release.set()

    assert engine.store.get_run(run_id).status == "CANCELLED"
    for branch in branches:
        ended = engine.store.get_run(branch.id)
        assert (ended.status, ended.reason) == ("CANCELLED", f"its run {run_id} ended (cancelled)")
    eventually(lambda: engine.worker.inflight == 0, what="the branches' slots to free")


@pytest.mark.parametrize("kind", ["def", "async"])
def test_log_lines_and_counts_around_a_group_are_each_stored_once(
    make_engine: Callable[..., Engine], kind: str
) -> None:
    app = stepline.App("flow")
    if kind == "def":

        @app.function(id="fan", triggers=[stepline.event(EVENT)])
        def fan(ctx: stepline.Context[Step]) -> list[str]:
            ctx.log.info("before")
            ctx.count("pages")
            both = ctx.step.parallel(
                "regions",
                [
                    lambda: ctx.step.run("north", lambda: "n"),
                    lambda: ctx.step.run("south", lambda: "s"),
                ],
            )
            ctx.log.info("after")
            ctx.count("pages")
            return [*both, ctx.step.run("report", lambda: "r")]

    else:

        @app.function(id="fan", triggers=[stepline.event(EVENT)])
        async def afan(ctx: stepline.Context[AsyncStep]) -> list[str]:
            ctx.log.info("before")
            ctx.count("pages")

            async def north() -> str:
                return await ctx.step.run("north", lambda: "n")

            async def south() -> str:
                return await ctx.step.run("south", lambda: "s")

            both = await ctx.step.parallel("regions", [north, south])
            ctx.log.info("after")
            ctx.count("pages")
            return [*both, await ctx.step.run("report", lambda: "r")]

    engine = make_engine(app, settings=NO_BACKOFF)
    run = completed(engine, start(engine, EVENT))

    assert json.loads(run.output or "") == ["n", "s", "r"]
    messages = [log.message for log in engine.get_run(run.id).logs]
    assert messages == ["before", "after"]
    assert json.loads(run.counters) == {"pages": 2}

"""Run endings as events: `stepline/function.failed` once a run fails for good (which runs its
`on_failure` handler once), `stepline/function.cancelled` once per cancelled run, and
`stepline/function.finished` when some function listens for it. Functions can trigger on
them by name or by "stepline/function.*"; a run they trigger emits no failed or finished
event itself, so a failing handler never loops."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.app import Handler
from stepline.sdk.step import AsyncStep, Step
from stepline.store.base import (
    CANCELLED_EVENT,
    FAILED_EVENT,
    FINISHED_EVENT,
    EventRecord,
    RunFilter,
    RunRecord,
)
from tests.engine.support import after, eventually, parked, settle, start

Event = dict[str, Any]
FLAVOURS = pytest.mark.parametrize("is_async", [False, True], ids=["def", "async"])


class Seen:
    """The events handlers received, in order (handlers run on worker threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Event] = []

    def add(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)

    @property
    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    def names(self) -> Counter[tuple[str, str]]:
        """(event name, function id) of each event received."""
        return Counter((e["name"], e["data"].get("function_id", "")) for e in self.events)


def recorder(is_async: bool, seen: Seen, *, fail: bool = False) -> Handler:
    """A function body that notes `ctx.event` (and then fails, if asked)."""

    def note(event: Event) -> str:
        seen.add(event)
        if fail:
            raise RuntimeError("the alert channel is down")
        return "noted"

    if is_async:

        async def handle_async(ctx: stepline.Context[AsyncStep]) -> str:
            return note(ctx.event)

        return handle_async

    def handle(ctx: stepline.Context[Step]) -> str:
        return note(ctx.event)

    return handle


def charging(is_async: bool, calls: Counter[str]) -> Handler:
    """A function body whose one step always fails ("declined 0", "declined 1", ...)."""

    def call_vendor() -> None:
        n = calls["charge"]
        calls["charge"] += 1
        raise RuntimeError(f"declined {n}")

    if is_async:

        async def charge_async(ctx: stepline.Context[AsyncStep]) -> None:
            await ctx.step.run("call-vendor", call_vendor)

        return charge_async

    def charge(ctx: stepline.Context[Step]) -> None:
        ctx.step.run("call-vendor", call_vendor)

    return charge


def sleeping(is_async: bool) -> Handler:
    """A function body that sleeps for an hour."""
    if is_async:

        async def nap_async(ctx: stepline.Context[AsyncStep]) -> None:
            await ctx.step.sleep("nap", "1h")

        return nap_async

    def nap(ctx: stepline.Context[Step]) -> None:
        ctx.step.sleep("nap", "1h")

    return nap


def charge_fails(engine: Engine, clock: FakeClock) -> str:
    """Start a charge (retries=1), let both attempts fail; returns the FAILED run's id."""
    run_id = start(engine, "billing/charge", {"order": "o-1"})
    parked(engine, run_id, "RETRYING")
    clock.advance(after(1))
    assert engine.wait_for_run(run_id, 10).status == "FAILED"
    return run_id


def stored(engine: Engine, name: str) -> list[EventRecord]:
    events, _ = engine.operations.events_page(name, 100, None)
    return events


def runs_of(engine: Engine, function_id: str) -> list[RunRecord]:
    return engine.list_runs(RunFilter(function_id=function_id))


def ended_runs_of(engine: Engine, function_id: str, count: int) -> list[RunRecord]:
    """Wait until `count` runs of the function have ended; returns them."""

    def probe() -> list[RunRecord] | None:
        runs = runs_of(engine, function_id)
        return runs if len(runs) == count and all(r.ended for r in runs) else None

    return eventually(probe, what=f"{count} ended run(s) of {function_id}")


@FLAVOURS
def test_on_failure_runs_once_after_the_retries_with_the_failed_event(
    is_async: bool, make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    calls: Counter[str] = Counter()
    seen = Seen()
    app = stepline.App("flow")
    app.function(
        id="charge",
        triggers=[stepline.event("billing/charge")],
        retries=1,
        on_failure=recorder(is_async, seen),
    )(charging(is_async, calls))
    engine = make_engine(app)
    run_id = start(engine, "billing/charge", {"order": "o-1"})
    parked(engine, run_id, "RETRYING")
    assert seen.events == [], "no failure handler while the run still retries"
    clock.advance(after(1))

    assert engine.wait_for_run(run_id, 10).status == "FAILED"

    [handler_run] = ended_runs_of(engine, "charge-failure", 1)
    assert handler_run.status == "COMPLETED", handler_run.error
    settle(engine)
    [event] = seen.events
    original = engine.operations.get_event(engine.store.get_run(run_id).event_ids[0])
    assert (event["name"], event["id"]) == (FAILED_EVENT, run_id)
    data = event["data"]
    assert (data["function_id"], data["run_id"]) == ("charge", run_id)
    assert data["event"] == original.payload()
    assert data["event"]["data"] == {"order": "o-1"}
    assert (data["error"]["name"], data["error"]["message"]) == ("RuntimeError", "declined 1")
    assert data["_inngest"] == {"status": "Failed"}
    assert calls["charge"] == 2
    [failed] = stored(engine, FAILED_EVENT)
    assert failed.internal_id == handler_run.event_id
    assert stored(engine, FINISHED_EVENT) == [], "nobody listens for finished: none stored"


@FLAVOURS
def test_functions_triggered_by_failed_or_by_a_wildcard_run_on_a_failure(
    is_async: bool, make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    calls: Counter[str] = Counter()
    on_failed, on_any = Seen(), Seen()
    app = stepline.App("flow")
    app.function(id="charge", triggers=[stepline.event("billing/charge")], retries=1)(
        charging(is_async, calls)
    )
    app.function(id="on-failed", triggers=[stepline.event(FAILED_EVENT)])(
        recorder(is_async, on_failed)
    )
    app.function(id="on-any", triggers=[stepline.event("stepline/function.*")])(
        recorder(is_async, on_any)
    )
    engine = make_engine(app)

    run_id = charge_fails(engine, clock)

    ended_runs_of(engine, "on-failed", 1)
    ended_runs_of(engine, "on-any", 2)
    settle(engine)
    assert on_failed.names() == Counter({(FAILED_EVENT, "charge"): 1})
    assert on_any.names() == Counter({(FAILED_EVENT, "charge"): 1, (FINISHED_EVENT, "charge"): 1})
    assert {e["data"]["run_id"] for e in on_any.events} == {run_id}
    finished = next(e for e in on_any.events if e["name"] == FINISHED_EVENT)
    assert finished["data"]["error"]["message"] == "declined 1"
    assert [e.name for e in stored(engine, FAILED_EVENT)] == [FAILED_EVENT]
    assert len(stored(engine, FINISHED_EVENT)) == 1, "the watchers' own runs announce nothing"
    assert all(r.status == "COMPLETED" for r in runs_of(engine, "on-any"))


@FLAVOURS
@pytest.mark.parametrize("how", ["request", "cancel_on"])
def test_cancelled_run_emits_one_cancelled_event(
    is_async: bool, how: str, make_engine: Callable[..., Engine]
) -> None:
    seen, failures = Seen(), Seen()
    app = stepline.App("flow")
    app.function(
        id="sleeper",
        triggers=[stepline.event("nap/requested")],
        cancel_on=stepline.CancelOn("nap/stop", match="data.nap"),
        on_failure=recorder(is_async, failures),
    )(sleeping(is_async))
    app.function(id="on-cancelled", triggers=[stepline.event(CANCELLED_EVENT)])(
        recorder(is_async, seen)
    )
    engine = make_engine(app)
    run_id = start(engine, "nap/requested", {"nap": "n-1"})
    parked(engine, run_id, "SLEEPING")

    if how == "request":
        engine.cancel(run_id)
    else:
        engine.send({"name": "nap/stop", "data": {"nap": "n-1"}})
    reason = engine.store.get_run(run_id).reason
    engine.cancel(run_id)  # cancelling an ended run changes nothing

    ended_runs_of(engine, "on-cancelled", 1)
    settle(engine)
    [event] = seen.events
    assert (event["name"], event["id"]) == (CANCELLED_EVENT, run_id)
    assert (event["data"]["function_id"], event["data"]["run_id"]) == ("sleeper", run_id)
    assert event["data"]["reason"] == reason
    assert event["data"]["_inngest"] == {"status": "Cancelled"}
    assert [e.id for e in stored(engine, CANCELLED_EVENT)] == [run_id]
    assert stored(engine, FAILED_EVENT) == []
    assert runs_of(engine, "sleeper-failure") == [], "a cancelled run has not failed"
    assert stored(engine, FINISHED_EVENT) == [], "nobody listens for finished: none stored"


@FLAVOURS
def test_finished_event_triggers_a_function_that_declares_it(
    is_async: bool, make_engine: Callable[..., Engine]
) -> None:
    seen = Seen()
    app = stepline.App("flow")

    @app.function(id="report", triggers=[stepline.event("report/requested")])
    def report(ctx: stepline.Context[Step]) -> dict[str, int]:
        return {"rows": 3}

    app.function(id="on-finished", triggers=[stepline.event(FINISHED_EVENT)])(
        recorder(is_async, seen)
    )
    engine = make_engine(app)
    run_id = start(engine, "report/requested")
    assert engine.wait_for_run(run_id, 10).status == "COMPLETED"

    [watcher] = ended_runs_of(engine, "on-finished", 1)

    assert watcher.status == "COMPLETED", watcher.error
    settle(engine)
    [event] = seen.events
    assert event["name"] == FINISHED_EVENT
    data = event["data"]
    assert (data["function_id"], data["run_id"], data["result"]) == ("report", run_id, {"rows": 3})
    assert data["_inngest"] == {"status": "Completed"}
    assert data["event"]["name"] == "report/requested"
    [finished] = stored(engine, FINISHED_EVENT)
    assert finished.internal_id == watcher.event_id, "the watcher's own end emits nothing"


@FLAVOURS
def test_a_failing_run_triggered_by_a_failure_emits_no_further_failure(
    is_async: bool, make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    calls: Counter[str] = Counter()
    seen = Seen()
    app = stepline.App("flow")
    app.function(id="charge", triggers=[stepline.event("billing/charge")], retries=1)(
        charging(is_async, calls)
    )
    app.function(id="alert", triggers=[stepline.event("stepline/function.*")], retries=0)(
        recorder(is_async, seen, fail=True)
    )
    engine = make_engine(app)

    charge_fails(engine, clock)

    alerts = ended_runs_of(engine, "alert", 2)
    settle(engine)
    assert [r.status for r in alerts] == ["FAILED", "FAILED"]
    assert seen.names() == Counter({(FAILED_EVENT, "charge"): 1, (FINISHED_EVENT, "charge"): 1})
    failed = stored(engine, FAILED_EVENT)
    assert [e.id for e in failed] == [runs_of(engine, "charge")[0].id], "no loop of failures"
    assert len(stored(engine, FINISHED_EVENT)) == 1
    assert len(runs_of(engine, "alert")) == 2

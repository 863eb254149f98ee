"""A run observer hears once of each run's start and once of its end, whatever happened between:
a sleep or a retry does not start a run again, a failure carries its error, a cancel its status."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import Step
from stepline.store.base import ClaimedRun, RunRecord
from tests.conftest import FAST_SETTINGS


class Heard:
    """What the observer was told, in order: ("started"|"ended", run id, status, error)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str | None]] = []
        self._lock = threading.Lock()

    def started(self, claimed: ClaimedRun) -> None:
        with self._lock:
            self.calls.append(("started", claimed.run.id, claimed.run.status, None))

    def ended(self, run: RunRecord) -> None:
        assert run.ended_at is not None
        with self._lock:
            self.calls.append(("ended", run.id, run.status, run.error))

    def of(self, run_id: str) -> list[tuple[str, str, str | None]]:
        with self._lock:
            return [
                (kind, status, error) for kind, rid, status, error in self.calls if rid == run_id
            ]


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def app_with_runs() -> stepline.App:
    app = stepline.App("observed")
    attempts: dict[str, int] = {}

    @app.function(id="nap", triggers=[stepline.event("obs/nap")], retries=1)
    def nap(ctx: stepline.Context[Step]) -> str:
        ctx.step.sleep("rest", "1m")
        attempts[ctx.run_id] = attempts.get(ctx.run_id, 0) + 1
        if attempts[ctx.run_id] == 1:
            raise RuntimeError("first try fails")
        return "rested"

    @app.function(id="broken", triggers=[stepline.event("obs/broken")], retries=0)
    def broken(ctx: stepline.Context[Step]) -> None:
        raise stepline.NonRetriableError("the vendor account is closed")

    @app.function(id="busy", triggers=[stepline.event("obs/busy")])
    def busy(ctx: stepline.Context[Step]) -> None:
        def work() -> None:
            ctx.cancelled.wait(10)

        ctx.step.run("work", work)

    return app


def start(engine: Engine, name: str) -> str:
    [event_id] = engine.send({"name": name, "data": {}})
    [run] = engine.operations.runs_for_event(event_id)
    return run.id


def test_a_sleep_and_a_retry_do_not_start_a_run_again(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    heard = Heard()
    engine = make_engine(app_with_runs(), settings=replace(FAST_SETTINGS, observer=heard))
    run_id = start(engine, "obs/nap")
    wait_for(lambda: engine.get_run(run_id).run.detail == "SLEEPING")
    clock.advance(61)  # wakes; the code after the sleep fails once, then retries in 1 s
    wait_for(lambda: engine.get_run(run_id).run.detail == "RETRYING")
    clock.advance(2)

    assert engine.wait_for_run(run_id, 10).status == "COMPLETED"
    wait_for(lambda: len(heard.of(run_id)) == 2)
    assert heard.of(run_id) == [("started", "RUNNING", None), ("ended", "COMPLETED", None)]


def test_a_failed_run_ends_with_its_error(make_engine: Callable[..., Engine]) -> None:
    heard = Heard()
    engine = make_engine(app_with_runs(), settings=replace(FAST_SETTINGS, observer=heard))
    run_id = start(engine, "obs/broken")

    assert engine.wait_for_run(run_id, 10).status == "FAILED"
    wait_for(lambda: len(heard.of(run_id)) == 2)
    [started, (kind, status, error)] = heard.of(run_id)
    assert started == ("started", "RUNNING", None)
    assert (kind, status) == ("ended", "FAILED")
    assert error is not None and "the vendor account is closed" in error


def test_a_cancelled_run_ends_cancelled_once_its_replay_stopped(
    make_engine: Callable[..., Engine],
) -> None:
    heard = Heard()
    engine = make_engine(app_with_runs(), settings=replace(FAST_SETTINGS, observer=heard))
    run_id = start(engine, "obs/busy")
    wait_for(lambda: bool(heard.of(run_id)))
    assert engine.cancel(run_id).status == "CANCELLED"

    wait_for(lambda: len(heard.of(run_id)) == 2)
    assert heard.of(run_id) == [("started", "RUNNING", None), ("ended", "CANCELLED", None)]

"""One scheduler leader at a time: on PostgreSQL the advisory lock passes to another process
within a second of its holder's death; on SQLite every process leads (one machine, and the cron
state's constraints alone keep each tick to one run). Either way, two schedulers ticking
concurrently on their own connections fire each cron tick exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.scheduler import Scheduler
from stepline.sdk.step import Step
from stepline.store import open_store
from stepline.store.base import FunctionRecord, RunFilter, Store
from tests.scale.support import database_of, eventually

CHILD = Path(__file__).with_name("lock_child.py")
TICKS = 10


def outcomes(report: Path) -> list[tuple[bool, float]]:
    """The lock outcomes a child reported: (held, when)."""
    if not report.exists():
        return []
    lines = [line.split() for line in report.read_text().splitlines()]
    return [(held == "True", float(at)) for held, at in lines]


@pytest.fixture
def contenders(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Lock-contending processes; each killed by its PID afterwards."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for child in started:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(10)


def contend(
    db: str, report: Path, contenders: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    with report.with_suffix(".log").open("wb") as log:
        child = subprocess.Popen(
            [sys.executable, str(CHILD), db, str(report)], stdout=log, stderr=log
        )
    contenders.append(child)
    return child


@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_leader_lock_passes_to_another_process_within_a_second_of_the_holder_dying(
    store: Store, tmp_path: Path, contenders: list[subprocess.Popen[bytes]]
) -> None:
    db = database_of(store)
    first_report, second_report = tmp_path / "first.txt", tmp_path / "second.txt"
    first = contend(db, first_report, contenders)
    eventually(lambda: outcomes(first_report), what="the first process to try", timeout=20)
    assert [held for held, _ in outcomes(first_report)] == [True]

    contend(db, second_report, contenders)
    eventually(lambda: outcomes(second_report), what="the second process to try", timeout=20)
    time.sleep(0.5)  # it keeps trying, and keeps being refused
    assert [held for held, _ in outcomes(second_report)] == [False]
    assert store.leader_lock().acquire() is False  # nor can this process take it

    os.kill(first.pid, signal.SIGKILL)
    killed_at = time.time()
    assert first.wait(10) == -signal.SIGKILL

    took = eventually(
        lambda: [at for held, at in outcomes(second_report) if held],
        what="the second process to take the lock",
        timeout=10,
    )
    assert took[0] - killed_at < 1.0, took[0] - killed_at
    assert [held for held, _ in outcomes(second_report)] == [False, True]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_every_sqlite_process_leads_because_one_machine_needs_no_election(
    store: Store, tmp_path: Path, contenders: list[subprocess.Popen[bytes]]
) -> None:
    # SqliteStore.leader_lock() is always granted: SQLite serves one machine, and the cron
    # state (fire_cron_tick) keeps each tick to one run however many schedulers lead.
    db = database_of(store)
    reports = [tmp_path / "first.txt", tmp_path / "second.txt"]
    for report in reports:
        contend(db, report, contenders)
    for report in reports:
        eventually(lambda: outcomes(report), what="both processes to try", timeout=20)  # noqa: B023
    assert [[held for held, _ in outcomes(r)] for r in reports] == [[True], [True]]
    assert store.leader_lock().acquire() is True


def every_minute() -> stepline.App:
    app = stepline.App("ticks")

    @app.function(id="minutely", triggers=[stepline.cron("* * * * *")])
    def minutely(ctx: stepline.Context[Step]) -> None:
        """Nothing: only its runs are counted."""

    return app


@pytest.mark.timeout(60)
def test_two_schedulers_on_their_own_connections_fire_each_tick_exactly_once(
    store: Store,
) -> None:
    app = every_minute()
    [fn] = app.functions.values()
    [trigger] = fn.cron_triggers
    clock = FakeClock()
    store.sync_functions(
        app.id,
        [FunctionRecord(id=fn.id, app_id=app.id, name=fn.name, config=fn.config())],
        clock.now(),
    )
    # Two stores: two connection pools and, on PostgreSQL, two leader-lock sessions.
    stores = [open_store(database_of(store)) for _ in range(2)]
    schedulers = [Scheduler(s, [fn], clock, poll_seconds=0.01) for s in stores]
    try:
        for scheduler in schedulers:
            scheduler.start()
        eventually(
            lambda: store.cron_last_tick(fn.id, trigger.schedule),
            what="a scheduler to see the schedule",
            timeout=10,
        )
        for tick in range(1, TICKS + 1):
            if tick == TICKS // 2:
                schedulers[0].stop()  # leader or not, the other one carries on
            clock.advance(60)
            eventually(
                lambda: len(store.list_runs(RunFilter(function_id=fn.id))) >= tick,  # noqa: B023
                what=f"tick {tick} to fire",
                timeout=10,
            )
            time.sleep(0.05)  # both schedulers get a chance to fire it again
        runs = store.list_runs(RunFilter(function_id=fn.id, limit=100))
        assert len(runs) == TICKS
        ticks = {run.trigger_by for run in runs}
        assert ticks == {trigger.schedule}
        assert len({run.event_id for run in runs}) == TICKS
    finally:
        for scheduler in schedulers:
            scheduler.stop()
        for opened in stores:
            opened.close()

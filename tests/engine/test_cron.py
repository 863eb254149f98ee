"""Cron schedules fire at local wall-clock times (also across DST changes), exactly once per
tick however many schedulers run, follow the missed-tick policy after downtime, and never
fire ticks from before a schedule was first seen."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.engine.scheduler import Scheduler
from stepline.sdk.step import Step
from stepline.sdk.triggers import MissedTicks
from stepline.store.base import RunFilter, RunRecord, Store


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def scheduled(expression: str, tz: str = "UTC", missed: MissedTicks = "latest") -> stepline.App:
    app = stepline.App("crons")

    @app.function(id="job", triggers=[stepline.cron(expression, tz=tz, missed=missed)])
    def job(ctx: stepline.Context[Step]) -> str:
        return str(ctx.event["data"]["scheduled_at"])

    return app


def cron_runs(store: Store) -> list[RunRecord]:
    return list(reversed(store.list_runs(RunFilter(function_id="job", limit=1000))))


def scheduled_at(store: Store, run: RunRecord) -> str:
    assert run.event_id is not None
    return str(json.loads(store.get_event(run.event_id).data)["scheduled_at"])


def scheduler_at(store: Store, app: stepline.App, start: datetime) -> tuple[Scheduler, FakeClock]:
    clock = FakeClock(start)
    scheduler = Scheduler(store, app.functions.values(), clock)
    scheduler.tick()  # first sight of the schedule
    return scheduler, clock


def test_midnight_in_johannesburg_fires_at_22_utc(store: Store) -> None:
    scheduler, clock = scheduler_at(
        store, scheduled("0 0 * * *", tz="Africa/Johannesburg"), utc(2026, 1, 1, 12)
    )
    clock.set(utc(2026, 1, 1, 21, 59, 59))
    scheduler.tick()
    assert cron_runs(store) == []

    clock.set(utc(2026, 1, 1, 22))
    scheduler.tick()
    scheduler.tick()

    [run] = cron_runs(store)
    assert (run.trigger_kind, run.trigger_by) == ("cron", "TZ=Africa/Johannesburg 0 0 * * *")
    assert scheduled_at(store, run) == "2026-01-02T00:00:00+02:00"
    assert store.cron_last_tick("job", "TZ=Africa/Johannesburg 0 0 * * *") == clock.now()


def test_nine_am_in_berlin_moves_an_hour_earlier_in_utc_after_spring_forward(
    store: Store,
) -> None:
    # Summer time starts on 29 March 2026: 09:00 is 08:00 UTC before, 07:00 UTC after.
    expected = [utc(2026, 3, 27, 8), utc(2026, 3, 28, 8), utc(2026, 3, 29, 7), utc(2026, 3, 30, 7)]
    scheduler, clock = scheduler_at(
        store, scheduled("0 9 * * *", tz="Europe/Berlin"), utc(2026, 3, 27, 0)
    )
    for n, tick in enumerate(expected):
        clock.set(tick - timedelta(seconds=1))
        scheduler.tick()
        assert len(cron_runs(store)) == n, f"fired before {tick}"
        clock.set(tick)
        scheduler.tick()
        assert len(cron_runs(store)) == n + 1, f"did not fire at {tick}"
    assert [scheduled_at(store, r)[-6:] for r in cron_runs(store)] == [
        "+01:00",
        "+01:00",
        "+02:00",
        "+02:00",
    ]


def test_time_skipped_by_spring_forward_fires_once_at_the_next_valid_time(store: Store) -> None:
    scheduler, clock = scheduler_at(
        store, scheduled("30 2 * * *", tz="Europe/Berlin"), utc(2026, 3, 28, 12)
    )
    # 29 March 2026: 02:00 CET jumps to 03:00 CEST (01:00 UTC); 02:30 does not exist.
    moment = utc(2026, 3, 28, 12)
    while moment < utc(2026, 3, 30, 12):
        moment += timedelta(minutes=10)
        clock.set(moment)
        scheduler.tick()

    assert [scheduled_at(store, r) for r in cron_runs(store)] == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]
    assert [r.created_at for r in cron_runs(store)] == [
        utc(2026, 3, 29, 1),
        utc(2026, 3, 30, 0, 30),
    ]


def test_time_repeated_by_fall_back_fires_once(store: Store) -> None:
    scheduler, clock = scheduler_at(
        store, scheduled("30 2 * * *", tz="Europe/Berlin"), utc(2026, 10, 24, 12)
    )
    # 25 October 2026: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
    moment = utc(2026, 10, 24, 12)
    while moment < utc(2026, 10, 25, 12):
        moment += timedelta(minutes=10)
        clock.set(moment)
        scheduler.tick()

    [run] = cron_runs(store)
    assert scheduled_at(store, run) == "2026-10-25T02:30:00+02:00"
    assert run.created_at == utc(2026, 10, 25, 0, 30)


def test_two_schedulers_ticking_concurrently_create_one_run_per_tick(store: Store) -> None:
    app = scheduled("* * * * *")
    start = utc(2026, 1, 1)
    clock = FakeClock(start)
    schedulers = [Scheduler(store, app.functions.values(), clock) for _ in range(2)]
    rounds = 21  # the first sight of the schedule, then 20 minutes of ticks
    # Each round the test moves the clock, then both schedulers tick at the same moment.
    barrier = threading.Barrier(3, timeout=10)
    failures: list[BaseException] = []

    def tick_along(scheduler: Scheduler) -> None:
        try:
            for _ in range(rounds):
                barrier.wait()
                scheduler.tick()
                barrier.wait()
        except BaseException as exc:  # reported on the test's thread
            failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=tick_along, args=(s,)) for s in schedulers]
    for thread in threads:
        thread.start()
    try:
        for minute in range(rounds):
            clock.set(start + timedelta(minutes=minute))
            barrier.wait()
            barrier.wait()
    finally:
        for thread in threads:
            thread.join(10)
    assert not failures, failures

    runs = cron_runs(store)
    assert len(runs) == rounds - 1
    assert len({scheduled_at(store, r) for r in runs}) == rounds - 1
    assert scheduled_at(store, runs[-1]) == "2026-01-01T00:20:00+00:00"


@pytest.mark.parametrize(("missed", "fired"), [("latest", 1), ("skip", 0)])
def test_after_five_days_of_downtime_latest_fires_once_and_skip_fires_nothing(
    store: Store, missed: MissedTicks, fired: int
) -> None:
    scheduler, clock = scheduler_at(
        store, scheduled("0 * * * *", missed=missed), utc(2026, 1, 1, 12, 30)
    )

    clock.advance(timedelta(days=5))
    scheduler.tick()
    scheduler.tick()

    runs = cron_runs(store)
    assert len(runs) == fired
    if runs:
        assert scheduled_at(store, runs[0]) == "2026-01-06T12:00:00+00:00"
    # 120 hourly ticks fell due (13:00 on day 1 to 12:00 on day 6); all but those run missed.
    [state] = store.cron_states().values()
    assert state.last_tick == utc(2026, 1, 6, 12)
    assert state.missed_total == 120 - fired
    # Either way the schedule is back on time: the next hour fires normally.
    clock.set(utc(2026, 1, 6, 13))
    scheduler.tick()
    assert len(cron_runs(store)) == fired + 1
    assert scheduled_at(store, cron_runs(store)[-1]) == "2026-01-06T13:00:00+00:00"
    assert store.cron_states()[("job", "TZ=UTC 0 * * * *")].missed_total == 120 - fired


def test_first_sight_of_a_schedule_does_not_fire_past_ticks(store: Store) -> None:
    scheduler, clock = scheduler_at(store, scheduled("* * * * *"), utc(2026, 1, 1, 12, 30, 30))

    scheduler.tick()

    assert cron_runs(store) == []
    assert store.cron_last_tick("job", "TZ=UTC * * * * *") == utc(2026, 1, 1, 12, 30, 30)
    clock.set(utc(2026, 1, 1, 12, 31))
    scheduler.tick()
    assert len(cron_runs(store)) == 1


def test_engine_runs_a_cron_tick_to_completion(
    make_engine: Callable[..., Engine], clock: FakeClock, store: Store
) -> None:
    clock.set(utc(2026, 1, 1, 21, 30))
    engine = make_engine(scheduled("0 0 * * *", tz="Africa/Johannesburg"))
    engine.scheduler.tick()

    clock.set(utc(2026, 1, 1, 22))
    engine.scheduler.tick()

    [run] = cron_runs(store)
    done = engine.wait_for_run(run.id, 10)
    assert (done.status, done.output) == ("COMPLETED", '"2026-01-02T00:00:00+02:00"')

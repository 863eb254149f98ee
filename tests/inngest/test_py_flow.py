"""Flow control of Python SDK functions, end to end: each option does what its user relies on.

Every function here is declared with the official `inngest` SDK's options, synced to a real
Stepline server and run by calling the app; outcomes are read from Stepline's records.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import inngest

from stepline.engine.clock import FakeClock
from stepline.store.base import RunFilter, RunRecord
from tests.engine.support import eventually
from tests.inngest.conftest import Stepline

Serve = Callable[[inngest.Inngest, Sequence[Any]], str]
SECOND = datetime.timedelta(seconds=1)


class InFlight:
    """Counts the app's requests in flight per key (and in all), keeping the peaks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()

    @contextmanager
    def request(self, key: str) -> Iterator[None]:
        with self._lock:
            for name in (key, "*"):
                self.now[name] += 1
                self.peak[name] = max(self.peak[name], self.now[name])
        try:
            yield
        finally:
            with self._lock:
                self.now[key] -= 1
                self.now["*"] -= 1


def send_together(client: inngest.Inngest, name: str, *data: dict[str, Any]) -> list[str]:
    """Send events in one request, as the SDK client does; their ids."""
    return client.send_sync([inngest.Event(name=name, data=d) for d in data])


def only_run(stepline: Stepline, event_id: str) -> RunRecord:
    """The one run the event made (started, skipped or joined), as it is now."""
    runs = stepline.engine.operations.runs_for_event(event_id)
    assert len(runs) == 1, runs
    return runs[0]


def output(run: RunRecord) -> Any:
    assert run.status == "COMPLETED", (run.status, run.error, run.reason)
    return json.loads(run.output or "null")


def test_concurrency_key_runs_one_request_per_key_at_a_time_and_keys_overlap(
    stepline: Stepline, py_app: Serve
) -> None:
    client = stepline.client("flow-concurrency")
    flight = InFlight()
    in_flight = {"a": threading.Event(), "b": threading.Event()}
    other = {"a": "b", "b": "a"}

    @client.create_function(
        fn_id="per-key",
        trigger=inngest.TriggerEvent(event="t/per-key"),
        concurrency=[inngest.Concurrency(limit=1, key="event.data.key")],
        retries=0,
    )
    def per_key(ctx: inngest.ContextSync) -> bool:
        key = ctx.event.data["key"]
        assert isinstance(key, str)
        with flight.request(key):
            in_flight[key].set()
            # Key a's first request waits here for key b to be called meanwhile (and b for a).
            met = ctx.step.run("meet", lambda: in_flight[other[key]].wait(10))
            ctx.step.run("work", lambda: time.sleep(0.2))
            return met

    stepline.sync(py_app(client, [per_key]))
    ids = send_together(client, "t/per-key", {"key": "a"}, {"key": "a"}, {"key": "b"})
    runs = [stepline.ended(only_run(stepline, i).id) for i in ids]

    assert [output(run) for run in runs] == [True, True, True]
    assert flight.peak["a"] == 1, "two runs of key a called the app at the same time"
    assert flight.peak["*"] >= 2, "keys a and b never ran at the same time"


def test_debounce_makes_one_run_with_the_latest_event(stepline: Stepline, py_app: Serve) -> None:
    client = stepline.client("flow-debounce")
    called: set[str] = set()

    @client.create_function(
        fn_id="debounced",
        trigger=inngest.TriggerEvent(event="t/debounced"),
        debounce=inngest.Debounce(period=SECOND),
        retries=0,
    )
    def debounced(ctx: inngest.ContextSync) -> Any:
        called.add(ctx.run_id)
        return ctx.event.data

    stepline.sync(py_app(client, [debounced]))
    first, latest = send_together(client, "t/debounced", {"n": 1}, {"n": 2})
    run = stepline.ended(only_run(stepline, latest).id)

    assert output(run) == {"n": 2}
    superseded = only_run(stepline, first)
    assert (superseded.status, superseded.detail) == ("SKIPPED", "DEBOUNCED")
    assert called == {run.id}


def test_batch_runs_once_with_every_event_and_the_first_as_event(
    stepline: Stepline, py_app: Serve
) -> None:
    client = stepline.client("flow-batch")
    called: set[str] = set()

    @client.create_function(
        fn_id="batched",
        trigger=inngest.TriggerEvent(event="t/batched"),
        batch_events=inngest.Batch(max_size=3, timeout=SECOND),
        retries=0,
    )
    def batched(ctx: inngest.ContextSync) -> Any:
        called.add(ctx.run_id)
        return {"event": ctx.event.data, "events": [e.data for e in ctx.events]}

    stepline.sync(py_app(client, [batched]))
    full = send_together(client, "t/batched", {"n": 1}, {"n": 2}, {"n": 3})
    partial = send_together(client, "t/batched", {"n": 4}, {"n": 5})
    full_run = stepline.ended(only_run(stepline, full[0]).id)
    partial_run = stepline.ended(only_run(stepline, partial[0]).id)  # at the timeout

    assert output(full_run) == {"event": {"n": 1}, "events": [{"n": 1}, {"n": 2}, {"n": 3}]}
    assert output(partial_run) == {"event": {"n": 4}, "events": [{"n": 4}, {"n": 5}]}
    assert {only_run(stepline, i).id for i in full} == {full_run.id}
    assert {only_run(stepline, i).id for i in partial} == {partial_run.id}
    assert called == {full_run.id, partial_run.id}


def test_singleton_skip_skips_a_trigger_while_a_run_is_active(
    stepline: Stepline, py_app: Serve
) -> None:
    client = stepline.client("flow-singleton-skip")
    called: set[str] = set()

    @client.create_function(
        fn_id="single",
        trigger=inngest.TriggerEvent(event="t/single"),
        singleton=inngest.Singleton(mode="skip"),
        retries=0,
    )
    def single(ctx: inngest.ContextSync) -> Any:
        called.add(ctx.run_id)
        return ctx.event.data

    stepline.sync(py_app(client, [single]))
    first, second = send_together(client, "t/single", {"n": 1}, {"n": 2})
    run = stepline.ended(only_run(stepline, first).id)
    skipped = only_run(stepline, second)

    assert output(run) == {"n": 1}
    assert (skipped.status, skipped.detail) == ("SKIPPED", "SINGLETON")
    assert skipped.reason is not None and run.id in skipped.reason
    assert called == {run.id}


def test_singleton_cancel_cancels_the_active_run_for_the_new_one(
    stepline: Stepline, py_app: Serve
) -> None:
    client = stepline.client("flow-singleton-cancel")
    after_nap: list[int] = []

    @client.create_function(
        fn_id="latest",
        trigger=inngest.TriggerEvent(event="t/latest"),
        singleton=inngest.Singleton(mode="cancel"),
        retries=0,
    )
    def latest(ctx: inngest.ContextSync) -> Any:
        n = ctx.event.data["n"]
        assert isinstance(n, int)
        ctx.step.sleep("nap", datetime.timedelta(seconds=30 if n == 1 else 1))
        ctx.step.run("after-nap", lambda: after_nap.append(n))
        return n

    stepline.sync(py_app(client, [latest]))
    first = only_run(stepline, stepline.send("t/latest", {"n": 1}))
    _sleeping(stepline, first.id)
    second, third = (
        only_run(stepline, i) for i in send_together(client, "t/latest", {"n": 2}, {"n": 3})
    )
    first_ended, second_ended = stepline.ended(first.id), stepline.ended(second.id)

    assert (first_ended.status, second_ended.status) == ("CANCELLED", "CANCELLED")
    assert first_ended.reason is not None and second.id in first_ended.reason
    assert second_ended.reason is not None and third.id in second_ended.reason
    assert output(stepline.ended(third.id)) == 3
    assert after_nap == [3]


def test_rate_limit_skips_triggers_over_the_limit_per_key(
    stepline: Stepline, py_app: Serve
) -> None:
    client = stepline.client("flow-rate-limit")

    @client.create_function(
        fn_id="limited",
        trigger=inngest.TriggerEvent(event="t/limited"),
        rate_limit=inngest.RateLimit(
            limit=2, period=datetime.timedelta(minutes=1), key="event.data.user"
        ),
        retries=0,
    )
    def limited(ctx: inngest.ContextSync) -> Any:
        return ctx.event.data

    stepline.sync(py_app(client, [limited]))
    ids = send_together(
        client, "t/limited", {"user": "ann"}, {"user": "ann"}, {"user": "ann"}, {"user": "bob"}
    )
    ann1, ann2, ann3, bob = (only_run(stepline, i) for i in ids)

    assert [output(stepline.ended(r.id)) for r in (ann1, ann2, bob)] == [
        {"user": "ann"},
        {"user": "ann"},
        {"user": "bob"},
    ]
    assert (ann3.status, ann3.detail) == ("SKIPPED", "RATE_LIMITED")
    assert ann3.reason and "rate limit" in ann3.reason.lower()


def test_throttle_delays_runs_over_the_limit_and_drops_none(
    stepline: Stepline, py_app: Serve
) -> None:
    client = stepline.client("flow-throttle")

    @client.create_function(
        fn_id="paced",
        trigger=inngest.TriggerEvent(event="t/paced"),
        throttle=inngest.Throttle(limit=1, period=SECOND, burst=1),
        retries=0,
    )
    def paced(ctx: inngest.ContextSync) -> Any:
        return ctx.event.data

    stepline.sync(py_app(client, [paced]))
    ids = send_together(client, "t/paced", {"n": 1}, {"n": 2}, {"n": 3})
    runs = [stepline.ended(only_run(stepline, i).id) for i in ids]

    assert [output(run) for run in runs] == [{"n": 1}, {"n": 2}, {"n": 3}]
    sent = runs[0].created_at
    for turn, run in enumerate(sorted(runs, key=lambda r: r.started_at or sent)):
        assert run.started_at is not None
        waited = (run.started_at - sent).total_seconds()
        assert waited >= turn - 0.05, f"run {turn + 1} started {waited:.2f}s after the send"


def test_idempotency_key_starts_no_second_run(stepline: Stepline, py_app: Serve) -> None:
    client = stepline.client("flow-idempotency")
    called: set[str] = set()

    @client.create_function(
        fn_id="once",
        trigger=inngest.TriggerEvent(event="t/once"),
        idempotency="event.data.order",
        retries=0,
    )
    def once(ctx: inngest.ContextSync) -> Any:
        called.add(ctx.run_id)
        return ctx.event.data["order"]

    stepline.sync(py_app(client, [once]))
    first = stepline.run_of(stepline.send("t/once", {"order": 1}))
    repeated = only_run(stepline, stepline.send("t/once", {"order": 1}))
    other = stepline.run_of(stepline.send("t/once", {"order": 2}))

    assert (output(first), output(other)) == (1, 2)
    assert (repeated.status, repeated.detail) == ("SKIPPED", "IDEMPOTENCY")
    assert called == {first.id, other.id}


def test_cancel_on_matching_event_cancels_the_sleeping_run_only(
    stepline: Stepline, py_app: Serve
) -> None:
    client = stepline.client("flow-cancel-on")
    woke: list[int] = []

    @client.create_function(
        fn_id="reminder",
        trigger=inngest.TriggerEvent(event="t/remind"),
        cancel=[inngest.Cancel(event="t/remind.cancel", if_exp="event.data.x == async.data.x")],
        retries=0,
    )
    def reminder(ctx: inngest.ContextSync) -> Any:
        x, nap = ctx.event.data["x"], ctx.event.data["nap"]
        assert isinstance(x, int) and isinstance(nap, int)
        ctx.step.sleep("wait", datetime.timedelta(seconds=nap))
        ctx.step.run("remind", lambda: woke.append(x))
        return x

    stepline.sync(py_app(client, [reminder]))
    sent = send_together(client, "t/remind", {"x": 1, "nap": 30}, {"x": 2, "nap": 3})
    cancelled, kept = (only_run(stepline, i) for i in sent)
    for run in (cancelled, kept):
        _sleeping(stepline, run.id)
    stepline.send("t/remind.cancel", {"x": 3})
    cancel_event = stepline.send("t/remind.cancel", {"x": 1})
    ended = stepline.ended(cancelled.id)
    assert stepline.engine.store.get_run(kept.id).detail == "SLEEPING"  # both events seen

    assert ended.status == "CANCELLED"
    assert ended.cancelled_by == stepline.engine.operations.get_event(cancel_event).internal_id
    assert output(stepline.ended(kept.id)) == 2
    assert woke == [2]


def test_cancel_over_http_during_a_step_ends_the_run_and_no_later_step_runs(
    stepline: Stepline, py_app: Serve
) -> None:
    client = stepline.client("flow-cancel-api")
    entered, release, returned = threading.Event(), threading.Event(), threading.Event()
    calls: Counter[str] = Counter()

    def block() -> str:
        entered.set()
        release.wait(20)
        return "released"

    @client.create_function(fn_id="long", trigger=inngest.TriggerEvent(event="t/long"), retries=0)
    def long(ctx: inngest.ContextSync) -> str:
        calls["request"] += 1
        try:
            ctx.step.run("block", block)
            ctx.step.run("after", lambda: calls.update(["after"]))
        finally:
            returned.set()
        return "done"

    stepline.sync(py_app(client, [long]))
    run = only_run(stepline, stepline.send("t/long"))
    eventually(entered.is_set, what="the step to start")
    returned.clear()
    response = stepline.http.delete(f"/v1/runs/{run.id}")
    assert response.status_code == 200, response.text
    assert stepline.engine.store.get_run(run.id).status == "CANCELLED"
    release.set()
    eventually(returned.is_set, what="the cancelled request to return")
    requests = calls["request"]
    deadline = time.monotonic() + 1.5  # a next call would follow the answer at once
    while time.monotonic() < deadline:
        assert calls["request"] == requests and calls["after"] == 0
        time.sleep(0.05)

    ended = stepline.engine.get_run(run.id)
    assert ended.run.status == "CANCELLED"
    assert [step.id for step in ended.steps if step.status == "completed"] == []


def test_finish_timeout_ends_a_run_that_is_still_running(stepline: Stepline, py_app: Serve) -> None:
    client = stepline.client("flow-finish-timeout")
    woke: list[str] = []

    @client.create_function(
        fn_id="slow",
        trigger=inngest.TriggerEvent(event="t/slow"),
        timeouts=inngest.Timeouts(finish=SECOND),
        retries=0,
    )
    def slow(ctx: inngest.ContextSync) -> str:
        ctx.step.run("first", lambda: "ok")
        ctx.step.sleep("long-nap", datetime.timedelta(seconds=30))
        ctx.step.run("after-nap", lambda: woke.append("woke"))
        return "finished"

    stepline.sync(py_app(client, [slow]))
    run = stepline.run_of(stepline.send("t/slow"), timeout=15)

    assert run.status != "COMPLETED" and woke == []
    assert run.started_at is not None and run.ended_at is not None
    assert 1 <= (run.ended_at - run.started_at).total_seconds() < 10
    # As for Python functions, a finish timeout fails the run (Inngest cancels it; the
    # difference is documented in docs/inngest.md).
    assert run.status == "FAILED"
    assert json.loads(run.error or "{}")["name"] == "RunTimeout"


def test_start_timeout_cancels_a_run_that_could_not_start_in_time(
    stepline: Stepline, py_app: Serve
) -> None:
    client = stepline.client("flow-start-timeout")
    holding, release = threading.Event(), threading.Event()
    called: set[str] = set()

    def hold() -> None:
        holding.set()
        release.wait(20)

    @client.create_function(
        fn_id="queued",
        trigger=inngest.TriggerEvent(event="t/queued"),
        concurrency=[inngest.Concurrency(limit=1)],
        timeouts=inngest.Timeouts(start=SECOND),
        retries=0,
    )
    def queued(ctx: inngest.ContextSync) -> str:
        called.add(ctx.run_id)
        ctx.step.run("hold", hold)
        return "done"

    stepline.sync(py_app(client, [queued]))
    busy = only_run(stepline, stepline.send("t/queued"))
    eventually(holding.is_set, what="the first run to hold the slot")
    late = stepline.ended(only_run(stepline, stepline.send("t/queued")).id, timeout=15)
    release.set()

    assert late.status == "CANCELLED"
    assert late.reason is not None and "timeouts.start" in late.reason
    assert output(stepline.ended(busy.id)) == "done"
    assert called == {busy.id}


def test_priority_is_synced_and_a_higher_priority_run_starts_first(
    stepline: Stepline, py_app: Serve
) -> None:
    client = stepline.client("flow-priority")
    holding, release = threading.Event(), threading.Event()
    started: list[str] = []

    def hold() -> None:
        holding.set()
        release.wait(20)

    @client.create_function(
        fn_id="ranked",
        trigger=inngest.TriggerEvent(event="t/ranked"),
        concurrency=[inngest.Concurrency(limit=1)],
        priority=inngest.Priority(run="event.data.vip ? 120 : 0"),
        retries=0,
    )
    def ranked(ctx: inngest.ContextSync) -> None:
        name = ctx.event.data["name"]
        assert isinstance(name, str)
        ctx.step.run("start", lambda: started.append(name))
        if name == "busy":
            ctx.step.run("hold", hold)

    stepline.sync(py_app(client, [ranked]))
    config = json.loads(stepline.engine.operations.function("flow-priority-ranked").config)
    assert config["priority"] == {"run": "event.data.vip ? 120 : 0"}
    busy = only_run(stepline, stepline.send("t/ranked", {"name": "busy", "vip": False}))
    eventually(holding.is_set, what="the first run to hold the slot")
    queued = [
        only_run(stepline, stepline.send("t/ranked", {"name": name, "vip": vip}))
        for name, vip in (("plain", False), ("vip", True))
    ]
    assert [_status(stepline, r.id) for r in queued] == ["QUEUED", "QUEUED"]
    release.set()
    for run in (busy, *queued):
        assert stepline.ended(run.id).status == "COMPLETED"

    assert started == ["busy", "vip", "plain"]


def _sleeping(stepline: Stepline, run_id: str) -> None:
    eventually(
        lambda: stepline.engine.store.get_run(run_id).detail == "SLEEPING",
        what=f"run {run_id} to sleep",
    )


def _status(stepline: Stepline, run_id: str) -> str:
    return stepline.engine.store.get_run(run_id).status


def _runs_of(stepline: Stepline, function_id: str) -> list[RunRecord]:
    return stepline.engine.list_runs(RunFilter(function_id=function_id))


# -- cron and re-sync, on a fake clock -------------------------------------------------------

PARIS_8_AM = datetime.datetime(2026, 1, 5, 7, 0, tzinfo=datetime.UTC)
PARIS_9_AM = PARIS_8_AM + datetime.timedelta(hours=1)


def test_a_cron_function_is_registered_with_its_zone_and_fires_at_local_time(
    make_stepline: Callable[..., Stepline], py_app: Serve
) -> None:
    clock = FakeClock(PARIS_8_AM)
    stepline = make_stepline(clock=clock)
    client = stepline.client("flow-cron")

    @client.create_function(
        fn_id="morning",
        trigger=inngest.TriggerCron(cron="TZ=Europe/Paris 0 9 * * *"),
        retries=0,
    )
    def morning(ctx: inngest.ContextSync) -> Any:
        return {"name": ctx.event.name, "cron": ctx.event.data.get("cron")}

    stepline.sync(py_app(client, [morning]))
    config = json.loads(stepline.engine.operations.function("flow-cron-morning").config)
    assert [(t["cron"], t["tz"]) for t in config["triggers"]] == [("0 9 * * *", "Europe/Paris")]
    stepline.engine.scheduler.tick()  # first sight of the schedule: counts from 08:00 Paris
    clock.set(PARIS_9_AM - SECOND)
    stepline.engine.scheduler.tick()
    assert _runs_of(stepline, "flow-cron-morning") == []

    clock.set(PARIS_9_AM)
    stepline.engine.scheduler.tick()
    [run] = eventually(lambda: _runs_of(stepline, "flow-cron-morning"), what="the 09:00 tick")

    assert (run.trigger_kind, run.trigger_by) == ("cron", "TZ=Europe/Paris 0 9 * * *")
    assert output(stepline.ended(run.id)) == {
        "name": "inngest/scheduled.timer",
        "cron": "TZ=Europe/Paris 0 9 * * *",
    }


def test_a_resync_without_a_function_stops_its_events_its_cron_and_its_runs(
    make_stepline: Callable[..., Stepline], py_app: Serve
) -> None:
    clock = FakeClock(PARIS_8_AM)
    stepline = make_stepline(clock=clock)

    def app(*, with_removed: bool) -> str:
        client = stepline.client("flow-resync")

        @client.create_function(fn_id="kept", trigger=inngest.TriggerEvent(event="t/kept"))
        def kept(ctx: inngest.ContextSync) -> str:
            return "kept"

        @client.create_function(
            fn_id="gone",
            trigger=[
                inngest.TriggerEvent(event="t/gone"),
                inngest.TriggerCron(cron="TZ=Europe/Paris 0 * * * *"),
            ],
        )
        def gone(ctx: inngest.ContextSync) -> str:
            if ctx.event.data.get("nap"):
                ctx.step.sleep("nap", datetime.timedelta(hours=1))
            return "gone"

        return py_app(client, [kept, gone] if with_removed else [kept])

    stepline.sync(app(with_removed=True))
    stepline.engine.scheduler.tick()  # first sight of the hourly schedule
    assert output(stepline.run_of(stepline.send("t/gone"))) == "gone"
    clock.set(PARIS_9_AM)
    stepline.engine.scheduler.tick()
    [cron_run] = eventually(
        lambda: [r for r in _runs_of(stepline, "flow-resync-gone") if r.trigger_kind == "cron"],
        what="the hourly tick",
    )
    assert output(stepline.ended(cron_run.id)) == "gone"
    sleeper = only_run(stepline, stepline.send("t/gone", {"nap": True}))
    _sleeping(stepline, sleeper.id)

    stepline.sync(app(with_removed=False))
    cancelled = stepline.ended(sleeper.id)
    assert cancelled.status == "CANCELLED", cancelled.reason
    names = {fn.id for fn in stepline.engine.operations.list_functions()}
    assert "flow-resync-gone" not in names and "flow-resync-kept" in names
    before = len(_runs_of(stepline, "flow-resync-gone"))
    assert stepline.engine.operations.runs_for_event(stepline.send("t/gone")) == []
    clock.set(PARIS_9_AM + datetime.timedelta(hours=3))
    stepline.engine.scheduler.tick()

    assert len(_runs_of(stepline, "flow-resync-gone")) == before
    assert output(stepline.run_of(stepline.send("t/kept"))) == "kept"

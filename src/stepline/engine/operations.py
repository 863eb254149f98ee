"""What clients, the server and the CLI do to the engine's state: send, invoke, cancel, replay.

Needs only a store: routing reads the function registry, so a process without the app's code
(a client, the server) can accept events and start runs that workers elsewhere execute.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from stepline import errors
from stepline._retention import DEFAULT_RETENTION, Retention
from stepline.engine import tracing
from stepline.engine.access import Credentials
from stepline.engine.audit import Audit, filter_details
from stepline.engine.clock import Clock, SystemClock
from stepline.engine.event_seed import seeded_ids
from stepline.engine.events import (
    INVOKED_EVENT,
    STEPLINE_EVENTS,
    EventRules,
    build_event,
    build_events,
)
from stepline.engine.reasons import given_reason
from stepline.engine.rerun import rerun_note, reused_steps
from stepline.engine.routing import Routing
from stepline.engine.waiting import waiting_reasons
from stepline.store.base import (
    AttemptRecord,
    CronState,
    EventRecord,
    FunctionRecord,
    FunctionStats,
    LogRecord,
    NewRun,
    RunFilter,
    RunRecord,
    StepRecord,
    Store,
)

# The most runs one bulk cancel or replay may select; a wider filter is refused whole.
MAX_BULK_RUNS = 10_000
PREVIEW_SAMPLE = 10  # runs shown by a bulk action's preview
STATS_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, kw_only=True)
class RunDetail:
    """A run with its steps, failed attempts and log lines.

    `waiting_for`: why it is not executing, if it is active; `children`: the runs it started
    by a step (invoked runs, parallel branches); `in_flight`: the step it is executing and
    since when, as its worker's last heartbeat said.
    """

    run: RunRecord
    steps: list[StepRecord]
    attempts: list[AttemptRecord]
    logs: list[LogRecord]
    waiting_for: str | None = None
    children: list[RunRecord] = field(default_factory=list)
    in_flight: tuple[str, datetime] | None = None


class Operations:
    """Commands and queries over a store, shared by `Engine`, `Client.local` and the server.

    `retention` is the default retention of ended runs that functions are shown with (the
    workers' `--retain`; pruning itself is the scheduler's).
    """

    def __init__(
        self, store: Store, clock: Clock | None = None, *, retention: Retention = DEFAULT_RETENTION
    ) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.retention = retention
        self.routing = Routing()
        self.audit = Audit(store, self.clock)
        self.credentials = Credentials(store, self.clock, self.audit)
        # Called after an SDK app's sync changed the registry (workers here read it again).
        self.registry_listeners: list[Callable[[], None]] = []

    def send(
        self,
        events: Any,
        *,
        rules: EventRules = STEPLINE_EVENTS,
        seed: str | None = None,
        sent_by: str | None = None,
        traceparent: str | None = None,
    ) -> list[str]:
        """Validate and store one event or a list; returns their ids (all or nothing).

        `seed`: an Inngest SDK's `X-Inngest-Event-Id-Seed`, from which the events' internal
        ids derive (`event_seed`). A retry of a request that was stored stores nothing again
        and is answered with the same ids. `sent_by`: the name of the event key or API token
        the events came with, kept with each and as the `trigger.by` of the runs they start.
        `traceparent`: a W3C trace context the runs they start continue (ignored if invalid).
        """
        now = self.clock.now()
        ids = seeded_ids(seed, len(events) if isinstance(events, list) else 1)
        records = build_events(events, now=now, rules=rules, ids=ids)
        if sent_by is not None:
            records = [replace(record, sent_by=sent_by) for record in records]
        records = tracing.with_traceparents(records, traceparent)
        if not records:
            return []
        if ids is None:
            return self.store.ingest_events(records, self.routing, now)
        return self._ingest_seeded(records, now)

    def _ingest_seeded(self, records: Sequence[EventRecord], now: datetime) -> list[str]:
        """Store events with seeded ids, or answer a retry with the ids already stored.

        A retried request's events come with the ids its first attempt stored: inserting one
        again fails (`Conflict`), and nothing of the attempt stays. Its stored events are then
        left out; the others (an event whose sender id was already held, say) go through as
        usual.
        """
        try:
            return self.store.ingest_events(records, self.routing, now)
        except errors.Conflict:
            wanted = [record.internal_id for record in records]
            stored = {event.internal_id for event in self.store.get_events(wanted)}
            if not stored:
                raise
        fresh = [record for record in records if record.internal_id not in stored]
        new_ids = iter(self.store.ingest_events(fresh, self.routing, now) if fresh else ())
        return [i if i in stored else next(new_ids) for i in wanted]

    def function(self, function_id: str) -> FunctionRecord:
        """A registered function; raises `NotFound` naming the known ones."""
        functions = self.store.list_functions()
        for fn in functions:
            if fn.id == function_id:
                return fn
        known = ", ".join(fn.id for fn in functions) or "none registered"
        raise errors.NotFound(f"unknown function {function_id!r} (known: {known})")

    def startable(self, function_id: str) -> FunctionRecord:
        """A function that may start runs; `NotFound`, or `Conflict` if it is paused."""
        fn = self.function(function_id)
        if fn.paused:
            raise errors.Conflict(
                f"function {function_id!r} is paused; resume it before starting runs"
            )
        return fn

    def pause(
        self, function_id: str, *, by: str | None = None, reason: str | None = None
    ) -> FunctionRecord:
        """Stop a function's events and cron ticks from starting runs; `NotFound` if unknown.

        The function records the pause's time, `by` (who asked) and `reason` (see `reasons`);
        so does the audit log.
        """
        reason = given_reason(reason)
        fn = self.store.set_function_paused(
            function_id, True, self.clock.now(), by=by, reason=reason
        )
        self.audit.record("function.pause", actor=by, target=function_id, reason=reason)
        return fn

    def resume(self, function_id: str, *, by: str | None = None) -> FunctionRecord:
        """Let a paused function's events and cron ticks start runs again (audited as `by`)."""
        fn = self.store.set_function_paused(function_id, False)
        self.audit.record("function.resume", actor=by, target=function_id)
        return fn

    def cron_states(self) -> dict[str, dict[str, CronState]]:
        """Per function, per schedule: the last tick and how many ticks were never run."""
        grouped: dict[str, dict[str, CronState]] = {}
        for (function_id, schedule), state in self.store.cron_states().items():
            grouped.setdefault(function_id, {})[schedule] = state
        return grouped

    def function_stats(self) -> dict[str, FunctionStats]:
        """Per function: its newest run and the runs that ended in the last 24 hours."""
        return self.store.function_stats(self.clock.now() - STATS_WINDOW)

    def invoke(
        self,
        function_id: str,
        data: dict[str, Any] | None = None,
        *,
        by: str | None = None,
        dry_run: bool = False,
        traceparent: str | None = None,
    ) -> str:
        """Start a run of `function_id` now with `data` as its event data; returns the run id.

        `dry_run`: a dry run (`ctx.dry_run`; what it sends is only recorded). `traceparent`:
        a W3C trace context the run continues (ignored if invalid).

        Raises `NotFound` for an unknown function and `Conflict` for a paused one.
        """
        fn = self.startable(function_id)
        if data is not None and not isinstance(data, dict):
            raise errors.InvalidInput("must be a JSON object", "data")
        now = self.clock.now()
        event = build_event(
            {"name": INVOKED_EVENT, "data": data or {}},
            now=now,
            source="manual",
            internal=True,
        )
        event = tracing.with_traceparent(event, traceparent)
        run = self.routing.new_run(
            fn.id,
            fn.config,
            kind="manual",
            events=(event,),
            now=now,
            trigger_by=by,
            dry_run=dry_run,
        )
        run_id = self.store.create_run(run, [event], now, self.routing)
        details = {"run_id": run_id, "dry_run": dry_run} if dry_run else {"run_id": run_id}
        self.audit.record("function.invoke", actor=by, target=function_id, details=details)
        return run_id

    def cancel(self, run_id: str, *, by: str | None = None, reason: str | None = None) -> RunRecord:
        """Cancel a run: no new step starts; a sleeping or waiting run ends at once.

        The run records `by` (who asked: a token's name, "dashboard:<name>", or without
        credentials "api", "dashboard", "client") and `reason`; so does the audit log.
        """
        reason = given_reason(reason)
        run = self.store.cancel_run(run_id, self.clock.now(), self.routing, by=by, reason=reason)
        self.audit.record("run.cancel", actor=by, target=run_id, reason=reason)
        return run

    def replay(self, run_id: str, *, by: str | None = None, reason: str | None = None) -> str:
        """Start a new run with the same trigger as `run_id`, linked to it; returns its id.

        `reason` is stored with the new run. Raises `NotFound` (run or function), `Conflict`
        if the function is paused or its flow control refuses the run (`run_id`: the run in
        the way), `InvalidInput` for a reason too long.
        """
        reason = given_reason(reason)
        original = self.store.get_run(run_id)
        fn = self.startable(original.function_id)
        run = replace(self._replay_of(original, fn), trigger_reason=reason)
        new_id = self.store.create_run(run, [], self.clock.now(), self.routing)
        self.audit.record(
            "run.replay", actor=by, target=run_id, reason=reason, details={"run_id": new_id}
        )
        return new_id

    def rerun(
        self,
        run_id: str,
        *,
        from_step: str | None = None,
        data: dict[str, Any] | None = None,
        dry_run: bool | None = None,
        reason: str | None = None,
        by: str | None = None,
    ) -> str:
        """Start a new run linked to `run_id` from one of its steps; returns its id.

        The finished steps before `from_step` (None: none) are reused, not executed again;
        the rest run with `data` as the event data if given (else the original event's).
        `dry_run` None keeps the original run's; `reason` is stored with the new run.

        Raises `NotFound` (run or function), `Conflict` if the function is paused, and
        `InvalidInput` for a step the run does not have, data for a run of several events
        or a parallel branch (its run is the one to rerun).
        """
        reason = given_reason(reason)
        original = self.store.get_run(run_id)
        if original.trigger_kind == "parallel":
            raise errors.InvalidInput(
                f"run {run_id} is a branch of run {original.parent_run_id}; rerun that run",
                "run_id",
            )
        fn = self.startable(original.function_id)
        now = self.clock.now()
        events = self.store.get_events(original.event_ids)
        edited = [] if data is None else [_edited_event(events, data, now)]
        reused = reused_steps(self.store.get_steps(run_id), from_step)
        run = self.routing.new_run(
            fn.id,
            fn.config,
            kind="rerun",
            events=edited or events,
            now=now,
            trigger_by=original.id,
            replay_of=original.id,
            dry_run=original.dry_run if dry_run is None else dry_run,
        )
        run = replace(run, trigger_reason=reason)
        note = rerun_note(original.id, from_step, reused, edited=bool(edited))
        new_id = self.store.create_run(
            run,
            edited,
            now,
            self.routing,
            steps=[replace(step, run_id=run.id, started_at=now, ended_at=now) for step in reused],
            logs=[LogRecord(run_id=run.id, ts=now, level="info", message=note)],
        )
        details = {"run_id": new_id, "from_step": from_step, "edited": bool(edited)}
        self.audit.record("run.rerun", actor=by, target=run_id, reason=reason, details=details)
        return new_id

    def preview_matching(
        self, run_filter: RunFilter, *, active_only: bool
    ) -> tuple[int, list[RunRecord]]:
        """How many runs a bulk cancel (`active_only`) or replay would touch, and the newest.

        Raises as the bulk action would: `InvalidInput` (no criterion, past `MAX_BULK_RUNS`);
        for a replay, `NotFound` or `Conflict` for a function gone or paused.
        """
        if not active_only:
            originals = self.store.list_runs(_bulk(run_filter))
            _check_bulk(originals)
            self._replayable(originals)
            return len(originals), originals[:PREVIEW_SAMPLE]
        ids = self.store.list_run_ids(_bulk(run_filter), active_only=True)
        _check_bulk(ids)
        return len(ids), [self.store.get_run(run_id) for run_id in ids[:PREVIEW_SAMPLE]]

    def cancel_matching(
        self, run_filter: RunFilter, *, by: str | None = None, reason: str | None = None
    ) -> int:
        """Cancel every active run matching the filter; returns how many were cancelled.

        Each records `by` and `reason` (as `cancel`). Raises `InvalidInput` if more than
        `MAX_BULK_RUNS` active runs match (nothing done).
        """
        reason = given_reason(reason)
        ids = self.store.list_run_ids(_bulk(run_filter), active_only=True)
        _check_bulk(ids)
        count = self.store.cancel_runs(ids, self.clock.now(), self.routing, by=by, reason=reason)
        details = {"filter": filter_details(run_filter), "count": count}
        self.audit.record("runs.cancel", actor=by, reason=reason, details=details)
        return count

    def replay_matching(
        self, run_filter: RunFilter, *, by: str | None = None, reason: str | None = None
    ) -> int:
        """Replay every run matching the filter, all in one transaction; returns how many.

        Each new run stores `reason`. Raises `InvalidInput` past `MAX_BULK_RUNS` runs,
        `NotFound` if a run's function is no longer registered and `Conflict` if it is
        paused; nothing is started then.
        """
        reason = given_reason(reason)
        originals = self.store.list_runs(_bulk(run_filter))
        _check_bulk(originals)
        functions = self._replayable(originals)
        # A limit that refuses one of many replays records it as skipped, not the whole call.
        runs = [
            replace(
                self._replay_of(run, functions[run.function_id], refuse="record"),
                trigger_reason=reason,
            )
            for run in reversed(originals)
        ]
        count = len(self.store.create_runs(runs, self.clock.now(), self.routing))
        details = {"filter": filter_details(run_filter), "count": count}
        self.audit.record("runs.replay", actor=by, reason=reason, details=details)
        return count

    def _replayable(self, runs: Sequence[RunRecord]) -> dict[str, FunctionRecord]:
        """The functions of `runs` by id; raises `NotFound` if one is gone, `Conflict` if paused."""
        functions = {fn.id: fn for fn in self.store.list_functions()}
        for function_id in sorted({run.function_id for run in runs}):
            if function_id not in functions:
                raise errors.NotFound(f"function {function_id!r} is no longer registered")
            if functions[function_id].paused:
                raise errors.Conflict(
                    f"function {function_id!r} is paused; resume it before replaying its runs"
                )
        return functions

    def wait_for_run(self, run_id: str, timeout_seconds: float = 60.0) -> RunRecord:
        """Block until the run ends; raises `TimeoutError` after `timeout_seconds` (real time)."""
        deadline = time.monotonic() + timeout_seconds
        pause = threading.Event()
        while True:
            run = self.store.get_run(run_id)
            if run.ended:
                return run
            if time.monotonic() >= deadline:
                raise TimeoutError(f"run {run_id} still {run.status} after {timeout_seconds:g}s")
            pause.wait(0.02)

    def run_detail(self, run_id: str) -> RunDetail:
        """A run with its steps, failed attempts and logs; raises `NotFound`."""
        run = self.store.get_run(run_id)
        steps = self.store.get_steps(run_id)
        return RunDetail(
            run=run,
            steps=steps,
            attempts=self.store.get_attempts(run_id),
            logs=self.store.get_logs(run_id),
            waiting_for=self.waiting([run]).get(run.id),
            children=self.store.list_runs(RunFilter(parent_run_id=run_id, limit=1000)),
            in_flight=self._in_flight(run, steps),
        )

    def _in_flight(
        self, run: RunRecord, steps: Sequence[StepRecord]
    ) -> tuple[str, datetime] | None:
        """The step the run is executing, unless it is parked or that step's row has ended."""
        if run.ended or run.detail is not None:
            return None  # parked (sleeping, waiting, retrying): nothing executes
        found = self.store.step_in_flight(run.id)
        if found is None:
            return None
        ended = any(s.id == found[0] and s.status in ("completed", "failed") for s in steps)
        return None if ended else found

    def waiting(self, runs: Sequence[RunRecord]) -> dict[str, str]:
        """Per active run, why it is not executing (see `waiting`)."""
        return waiting_reasons(self.store, runs, self.clock.now())

    def list_runs(self, run_filter: RunFilter) -> list[RunRecord]:
        """Runs matching the filter, newest first."""
        return self.store.list_runs(run_filter)

    def _replay_of(
        self, original: RunRecord, fn: FunctionRecord, *, refuse: str = "raise"
    ) -> NewRun:
        """A new run with `original`'s events, linked to it."""
        events = self.store.get_events(original.event_ids)
        run = self.routing.new_run(
            fn.id,
            fn.config,
            kind="replay",
            events=events,
            now=self.clock.now(),
            trigger_by=original.id,
            replay_of=original.id,
            dry_run=original.dry_run,
        )
        if refuse == "record":
            run = replace(run, flow=replace(run.flow, refuse="record"))
        return run

    def runs_page(self, run_filter: RunFilter) -> tuple[list[RunRecord], str | None]:
        """A page of runs and the cursor of the next page (None on the last page)."""
        runs = self.store.list_runs(replace(run_filter, limit=run_filter.limit + 1))
        if len(runs) > run_filter.limit:
            return runs[: run_filter.limit], runs[run_filter.limit - 1].id
        return runs, None

    def events_page(
        self,
        name: str | None,
        limit: int,
        before: str | None,
        *,
        received_after: datetime | None = None,
        received_before: datetime | None = None,
        name_prefix: str | None = None,
    ) -> tuple[list[EventRecord], str | None]:
        """A page of events, newest first, and the cursor of the next page (or None)."""
        events = self.store.list_events(
            name,
            limit + 1,
            before,
            received_after=received_after,
            received_before=received_before,
            name_prefix=name_prefix,
        )
        if len(events) > limit:
            return events[:limit], events[limit - 1].internal_id
        return events, None

    def runs_for_event(self, event_id: str) -> list[RunRecord]:
        """Runs started by one event (its internal id or the sender's id); `NotFound` if none."""
        event = self.store.get_event(event_id)
        return self.store.list_runs(RunFilter(event_id=event.internal_id, limit=1000))

    def get_event(self, event_id: str) -> EventRecord:
        """One event; raises `NotFound`."""
        return self.store.get_event(event_id)

    def list_functions(self) -> Sequence[FunctionRecord]:
        """The function registry."""
        return self.store.list_functions()


def _edited_event(events: Sequence[EventRecord], data: Any, now: datetime) -> EventRecord:
    """The event of a rerun with edited data: the original's name and user, the new data."""
    if len(events) != 1:
        raise errors.InvalidInput(
            f"the run was started by {len(events)} events; only one event's data can be edited",
            "data",
        )
    original = events[0]
    return build_event(
        {"name": original.name, "data": data, "user": json.loads(original.user)},
        now=now,
        source="rerun",
        internal=True,
    )


def _bulk(run_filter: RunFilter) -> RunFilter:
    """The filter widened to one more than the bulk cap (to detect going past it).

    Raises:
        InvalidInput: The filter has no criterion (it would select every run).
    """
    run_filter = replace(run_filter, q=run_filter.q or None, before=None, limit=MAX_BULK_RUNS + 1)
    if run_filter == RunFilter(before=None, limit=MAX_BULK_RUNS + 1):
        raise errors.InvalidInput(
            'give at least one criterion, e.g. {"function_id": "..."}', "body"
        )
    return run_filter


def _check_bulk(selected: Sequence[object]) -> None:
    if len(selected) > MAX_BULK_RUNS:
        raise errors.InvalidInput(
            f"matches more than {MAX_BULK_RUNS} runs; narrow it (e.g. with created_before)",
            "body",
        )

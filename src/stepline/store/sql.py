"""Every query, written once in SQLAlchemy Core; backends add only engine setup and hooks."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from stepline import errors
from stepline.store import schema as t
from stepline.store.base import (
    ACTIVE_STATUSES,
    AttemptRecord,
    ClaimedRun,
    EventRecord,
    EventRouting,
    FunctionRecord,
    Lease,
    LogRecord,
    NewAttempt,
    NewRun,
    NewWait,
    RunDelta,
    RunFilter,
    RunRecord,
    RunStatus,
    StepRecord,
    WaitRecord,
    from_epoch,
)

EVENT_ID_TTL = timedelta(hours=24)
TIMEOUT_ERROR = "RunTimeout"


class SqlStore:
    """The Store implementation shared by SQLite and PostgreSQL.

    Subclasses provide the engines (`_write_transaction`, `_read_connection`) and classify
    driver errors (`_translate`).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._wakeups: list[Callable[[], None]] = []

    # -- hooks -------------------------------------------------------------------------------

    def _write_transaction(self) -> AbstractContextManager[Connection]:
        return self.engine.begin()

    def _read_connection(self) -> AbstractContextManager[Connection]:
        return self.engine.connect()

    def _translate(self, error: DBAPIError) -> errors.StoreError:
        if isinstance(error, IntegrityError):
            return errors.Conflict(str(error.orig))
        return errors.StoreUnavailable(f"database error: {error.orig}")

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self._write_transaction() as conn:
                yield conn
        except DBAPIError as exc:
            raise self._translate(exc) from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self._read_connection() as conn:
                yield conn
        except DBAPIError as exc:
            raise self._translate(exc) from exc

    # -- lifecycle ---------------------------------------------------------------------------

    def upgrade(self) -> None:
        """Apply pending schema migrations."""
        from stepline.store.migrate import upgrade

        upgrade(self.engine)

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()

    def add_wakeup(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever this process makes work available."""
        self._wakeups.append(callback)

    def _wake(self) -> None:
        for callback in self._wakeups:
            callback()

    # -- functions ---------------------------------------------------------------------------

    def sync_functions(
        self, app_id: str, functions: Sequence[FunctionRecord], now: datetime
    ) -> None:
        """Register an app's functions, replacing their previous configuration."""
        with self._write() as conn:
            for fn in functions:
                values = {
                    "app_id": app_id,
                    "name": fn.name,
                    "config": fn.config,
                    "updated_at": now.timestamp(),
                }
                done = conn.execute(update(t.functions).where(t.functions.c.id == fn.id), values)
                if done.rowcount == 0:
                    conn.execute(insert(t.functions), {"id": fn.id, "paused": False, **values})

    def list_functions(self) -> list[FunctionRecord]:
        """All registered functions, by id."""
        with self._read() as conn:
            rows = conn.execute(select(t.functions).order_by(t.functions.c.id)).mappings()
            return [FunctionRecord.from_row(r) for r in rows]

    # -- events and runs ---------------------------------------------------------------------

    def ingest_events(
        self, events: Sequence[EventRecord], routing: EventRouting, now: datetime
    ) -> list[str]:
        """Store events, start the runs they trigger and resume the waits they satisfy."""
        with self._write() as conn:
            ids, woke = self._ingest(conn, events, routing, now)
        if woke:
            self._wake()
        return ids

    def _ingest(
        self,
        conn: Connection,
        events: Sequence[EventRecord],
        routing: EventRouting,
        now: datetime,
    ) -> tuple[list[str], bool]:
        functions = [
            FunctionRecord.from_row(r)
            for r in conn.execute(select(t.functions).where(t.functions.c.paused.is_(False)))
            .mappings()
            .all()
        ]
        ids: list[str] = []
        woke = False
        for event in events:
            existing = self._claim_event_id(conn, event, now)
            if existing is not None:
                ids.append(existing)
                continue
            conn.execute(insert(t.events), _event_row(event))
            ids.append(event.internal_id)
            for run in routing.runs_for(event, functions):
                woke |= self._insert_run(conn, run, now, quiet_conflict=True)
            woke |= self._resume_waits(conn, event, routing, now)
        return ids, woke

    def _claim_event_id(self, conn: Connection, event: EventRecord, now: datetime) -> str | None:
        """Hold the sender's event id for 24 h; return the holder's internal id if taken."""
        if event.id == event.internal_id:
            return None
        row = conn.execute(
            select(t.event_ids.c.internal_id, t.event_ids.c.expires_at).where(
                t.event_ids.c.id == event.id
            )
        ).first()
        expires = (now + EVENT_ID_TTL).timestamp()
        if row is None:
            conn.execute(
                insert(t.event_ids),
                {"id": event.id, "internal_id": event.internal_id, "expires_at": expires},
            )
            return None
        if row.expires_at > now.timestamp():
            return str(row.internal_id)
        conn.execute(
            update(t.event_ids).where(t.event_ids.c.id == event.id),
            {"internal_id": event.internal_id, "expires_at": expires},
        )
        return None

    def _insert_run(
        self, conn: Connection, run: NewRun, now: datetime, *, quiet_conflict: bool = False
    ) -> bool:
        at = (run.available_at or now).timestamp()
        row = {
            "id": run.id,
            "function_id": run.function_id,
            "status": "QUEUED",
            "trigger_kind": run.trigger_kind,
            "trigger_by": run.trigger_by,
            "event_id": run.event_ids[0] if run.event_ids else None,
            "event_ids": json.dumps(list(run.event_ids)),
            "replay_of": run.replay_of,
            "idempotency_key": run.idempotency_key,
            "attempt": 0,
            "failures": 0,
            "created_at": now.timestamp(),
            "timeout_seconds": run.timeout_seconds,
            "counters": "{}",
        }
        queue_row = {
            "run_id": run.id,
            "function_id": run.function_id,
            "available_at": at,
            "priority": 0,
        }
        if run.idempotency_key is None:
            conn.execute(insert(t.runs), row)
            conn.execute(insert(t.queue), queue_row)
            return True
        try:
            with conn.begin_nested():
                conn.execute(insert(t.runs), row)
                conn.execute(insert(t.queue), queue_row)
        except IntegrityError:
            if quiet_conflict:
                return False
            raise errors.Conflict(
                f"function {run.function_id!r} already has a run with key {run.idempotency_key!r}"
            ) from None
        return True

    def _resume_waits(
        self, conn: Connection, event: EventRecord, routing: EventRouting, now: datetime
    ) -> bool:
        rows = conn.execute(
            select(t.waits, t.runs.c.event_id)
            .join(t.runs, t.runs.c.id == t.waits.c.run_id)
            .where(t.waits.c.event_name == event.name, t.waits.c.expires_at > now.timestamp())
            .order_by(t.waits.c.seq)
        ).mappings()
        resumed = False
        for row in rows.all():
            wait = WaitRecord.from_row(row)
            trigger = self._event_by_internal_id(conn, row["event_id"])
            if not routing.wait_matches(wait, event, trigger):
                continue
            conn.execute(
                delete(t.waits).where(
                    t.waits.c.run_id == wait.run_id, t.waits.c.step_hash == wait.step_hash
                )
            )
            conn.execute(
                update(t.steps).where(
                    t.steps.c.run_id == wait.run_id,
                    t.steps.c.hash == wait.step_hash,
                    t.steps.c.status == "waiting",
                ),
                {
                    "status": "completed",
                    "output": json.dumps(event.payload()),
                    "ended_at": now.timestamp(),
                },
            )
            conn.execute(
                update(t.queue).where(t.queue.c.run_id == wait.run_id),
                {"available_at": now.timestamp()},
            )
            resumed = True
        return resumed

    def _event_by_internal_id(
        self, conn: Connection, internal_id: str | None
    ) -> EventRecord | None:
        if internal_id is None:
            return None
        row = conn.execute(select(t.events).where(t.events.c.internal_id == internal_id)).first()
        return None if row is None else EventRecord.from_row(row._mapping)

    def create_run(self, run: NewRun, events: Sequence[EventRecord], now: datetime) -> str:
        """Store `events` and create one run; raises `Conflict` on a repeated idempotency key."""
        with self._write() as conn:
            for event in events:
                conn.execute(insert(t.events), _event_row(event))
            self._insert_run(conn, run, now)
        self._wake()
        return run.id

    def fire_cron_tick(
        self,
        function_id: str,
        schedule: str,
        tick: datetime,
        run: NewRun | None,
        now: datetime,
        *,
        events: Sequence[EventRecord] = (),
    ) -> bool:
        """Advance a schedule to `tick` and create its run; False if another scheduler did."""
        try:
            with self._write() as conn:
                state = t.cron_state.c
                where = and_(state.function_id == function_id, state.schedule == schedule)
                last = conn.execute(select(state.last_tick).where(where)).scalar()
                if last is not None and last >= tick.timestamp():
                    return False
                if last is None:
                    conn.execute(
                        insert(t.cron_state),
                        {
                            "function_id": function_id,
                            "schedule": schedule,
                            "last_tick": tick.timestamp(),
                        },
                    )
                else:
                    conn.execute(update(t.cron_state).where(where), {"last_tick": tick.timestamp()})
                for event in events:
                    conn.execute(insert(t.events), _event_row(event))
                if run is not None:
                    self._insert_run(conn, run, now)
        except errors.Conflict:
            return False
        if run is not None:
            self._wake()
        return True

    def cron_last_tick(self, function_id: str, schedule: str) -> datetime | None:
        """The last tick recorded for a schedule, or None if it never ran."""
        state = t.cron_state.c
        with self._read() as conn:
            last = conn.execute(
                select(state.last_tick).where(
                    state.function_id == function_id, state.schedule == schedule
                )
            ).scalar()
        return from_epoch(last)

    # -- the queue ---------------------------------------------------------------------------

    def _claimable_ids(
        self,
        conn: Connection,
        owner: str,
        limit: int,
        now: float,
        lease_seconds: float,
        function_ids: Sequence[str],
    ) -> list[str]:
        """Pick and lease due queue items. PostgreSQL overrides this with SKIP LOCKED."""
        q = t.queue.c
        due = or_(
            and_(q.lease_owner.is_(None), q.available_at <= now),
            q.lease_expires_at <= now,
        )
        ids = list(
            conn.execute(
                select(q.run_id)
                .where(due, q.function_id.in_(function_ids))
                .order_by(q.priority.desc(), q.available_at)
                .limit(limit)
            ).scalars()
        )
        if ids:
            conn.execute(
                update(t.queue).where(q.run_id.in_(ids)),
                {"lease_owner": owner, "lease_expires_at": now + lease_seconds},
            )
        return ids

    def claim_runs(
        self,
        owner: str,
        limit: int,
        now: datetime,
        lease_seconds: float,
        function_ids: Sequence[str],
    ) -> list[ClaimedRun]:
        """Lease up to `limit` due runs of `function_ids` and load what replaying them needs."""
        stamp = now.timestamp()
        with self._write() as conn:
            ids = self._claimable_ids(conn, owner, limit, stamp, lease_seconds, function_ids)
            if not ids:
                return []
            r = t.runs.c
            conn.execute(
                update(t.runs).where(r.id.in_(ids), r.started_at.is_(None)),
                {"started_at": stamp},
            )
            conn.execute(
                update(t.runs)
                .where(r.id.in_(ids), r.timeout_at.is_(None), r.timeout_seconds.is_not(None))
                .values(timeout_at=stamp + r.timeout_seconds)
            )
            # Queued or resumed: executing now, no longer sleeping, waiting or retrying.
            conn.execute(update(t.runs).where(r.id.in_(ids)), {"status": "RUNNING", "detail": None})
            conn.execute(
                update(t.queue)
                .where(t.queue.c.run_id.in_(ids), t.queue.c.timeout_at.is_(None))
                .values(
                    timeout_at=select(r.timeout_at)
                    .where(r.id == t.queue.c.run_id)
                    .scalar_subquery()
                )
            )
            return self._load_claimed(conn, ids, owner, lease_seconds)

    def _load_claimed(
        self, conn: Connection, ids: list[str], owner: str, lease_seconds: float
    ) -> list[ClaimedRun]:
        runs = [
            RunRecord.from_row(m)
            for m in conn.execute(select(t.runs).where(t.runs.c.id.in_(ids))).mappings()
        ]
        event_ids = {e for run in runs for e in run.event_ids}
        events = {
            row["internal_id"]: EventRecord.from_row(row)
            for row in conn.execute(
                select(t.events).where(t.events.c.internal_id.in_(event_ids))
            ).mappings()
        }
        started = [run.id for run in runs if run.started_at is not None]
        steps: dict[str, list[StepRecord]] = {run.id: [] for run in runs}
        for row in conn.execute(
            select(t.steps).where(t.steps.c.run_id.in_(started)).order_by(t.steps.c.position)
        ).mappings():
            steps[row["run_id"]].append(StepRecord.from_row(row))
        failures: dict[str, dict[str, int]] = {run.id: {} for run in runs}
        failed = [run.id for run in runs if run.failures]
        if failed:
            a = t.attempts.c
            for run_id, step_hash, count in conn.execute(
                select(a.run_id, a.step_hash, func.count())
                .where(a.run_id.in_(failed))
                .group_by(a.run_id, a.step_hash)
            ):
                failures[run_id][step_hash] = count
        return [
            ClaimedRun(
                run=run,
                lease=Lease(run_id=run.id, owner=owner, seconds=lease_seconds),
                events=tuple(events[e] for e in run.event_ids if e in events),
                steps=tuple(steps[run.id]),
                step_failures=failures[run.id],
            )
            for run in runs
        ]

    def next_due_at(self) -> datetime | None:
        """When the earliest unleased item, lease expiry or run timeout falls due."""
        q = t.queue.c
        with self._read() as conn:
            row = conn.execute(
                select(
                    func.min(q.available_at).filter(q.lease_owner.is_(None)),
                    func.min(q.lease_expires_at),
                    func.min(q.timeout_at),
                )
            ).one()
        times = [v for v in row if v is not None]
        return from_epoch(min(times)) if times else None

    def extend_leases(self, owner: str, run_ids: Sequence[str], until: datetime) -> set[str]:
        """Extend leases; returns the ids whose lease this owner no longer holds."""
        if not run_ids:
            return set()
        q = t.queue.c
        with self._write() as conn:
            conn.execute(
                update(t.queue).where(q.run_id.in_(run_ids), q.lease_owner == owner),
                {"lease_expires_at": until.timestamp()},
            )
            held = set(
                conn.execute(
                    select(q.run_id).where(q.run_id.in_(run_ids), q.lease_owner == owner)
                ).scalars()
            )
        return set(run_ids) - held

    def _hold(self, conn: Connection, lease: Lease, now: datetime) -> None:
        """Renew the lease, or raise LeaseLost: the check every lease-taking write starts with."""
        q = t.queue.c
        done = conn.execute(
            update(t.queue).where(q.run_id == lease.run_id, q.lease_owner == lease.owner),
            {"lease_expires_at": now.timestamp() + lease.seconds},
        )
        if done.rowcount != 1:
            raise errors.LeaseLost(f"run {lease.run_id} is no longer leased by {lease.owner}")

    def _apply_delta(self, conn: Connection, run_id: str, delta: RunDelta) -> None:
        if not delta:
            return
        values: dict[str, Any] = {}
        if delta.progress is not None:
            done, total, message = delta.progress
            values.update(progress_done=done, progress_total=total, progress_message=message)
        if delta.counters:
            stored = conn.execute(select(t.runs.c.counters).where(t.runs.c.id == run_id)).scalar()
            counters = json.loads(stored or "{}")
            for name, n in delta.counters.items():
                counters[name] = counters.get(name, 0) + n
            values["counters"] = json.dumps(counters)
        if values:
            conn.execute(update(t.runs).where(t.runs.c.id == run_id), values)
        if delta.logs:
            conn.execute(
                insert(t.run_logs),
                [
                    {
                        "run_id": log.run_id,
                        "ts": log.ts.timestamp(),
                        "level": log.level,
                        "message": log.message,
                        "step_id": log.step_id,
                    }
                    for log in delta.logs
                ],
            )

    def commit_step(
        self,
        lease: Lease,
        step: StepRecord,
        delta: RunDelta,
        now: datetime,
        *,
        events: Sequence[EventRecord] = (),
        routing: EventRouting | None = None,
        consume_wait: bool = False,
        attempt: NewAttempt | None = None,
    ) -> None:
        """Save a finished step (and the events it sends) with the run's progress, atomically."""
        woke = False
        with self._write() as conn:
            self._hold(conn, lease, now)
            if consume_wait:
                w = t.waits.c
                gone = conn.execute(
                    delete(t.waits).where(w.run_id == lease.run_id, w.step_hash == step.hash)
                )
                if gone.rowcount != 1:
                    raise errors.Conflict(f"wait {step.id!r} was already resolved by an event")
            self._save_step(conn, step)
            if attempt is not None:
                self._insert_attempt(conn, lease.run_id, attempt, now)
                conn.execute(
                    update(t.runs)
                    .where(t.runs.c.id == lease.run_id)
                    .values(failures=t.runs.c.failures + 1)
                )
            self._apply_delta(conn, lease.run_id, delta)
            if events:
                if routing is None:
                    raise ValueError("routing is required to send events")
                _, woke = self._ingest(conn, events, routing, now)
        if woke:
            self._wake()

    def _save_step(self, conn: Connection, step: StepRecord) -> None:
        row = _step_row(step)
        if step.kind in ("sleep", "wait"):
            s = t.steps.c
            done = conn.execute(
                update(t.steps).where(
                    s.run_id == step.run_id,
                    s.hash == step.hash,
                    s.status.in_(("sleeping", "waiting")),
                ),
                row,
            )
            if done.rowcount == 1:
                return
        conn.execute(insert(t.steps), row)

    def park_run(
        self,
        lease: Lease,
        available_at: datetime,
        delta: RunDelta,
        now: datetime,
        *,
        detail: str | None,
        step: StepRecord | None = None,
        attempt: NewAttempt | None = None,
        wait: NewWait | None = None,
    ) -> None:
        """Release a run until `available_at`, recording why (sleep, wait or failed attempt)."""
        q = t.queue.c
        with self._write() as conn:
            released = conn.execute(
                update(t.queue).where(q.run_id == lease.run_id, q.lease_owner == lease.owner),
                {
                    "available_at": available_at.timestamp(),
                    "lease_owner": None,
                    "lease_expires_at": None,
                },
            )
            if released.rowcount != 1:
                raise errors.LeaseLost(f"run {lease.run_id} is no longer leased by {lease.owner}")
            run_values: dict[str, Any] = {"detail": detail}
            if attempt is not None:
                self._insert_attempt(conn, lease.run_id, attempt, now)
                run_values["failures"] = t.runs.c.failures + 1
                if not attempt.step_hash:
                    run_values["attempt"] = attempt.attempt + 1
            conn.execute(update(t.runs).where(t.runs.c.id == lease.run_id).values(run_values))
            if step is not None:
                self._save_step(conn, step)
            if wait is not None:
                conn.execute(
                    insert(t.waits),
                    {
                        "run_id": lease.run_id,
                        "step_hash": wait.step_hash,
                        "event_name": wait.event_name,
                        "expression": wait.expression,
                        "created_at": now.timestamp(),
                        "expires_at": wait.expires_at.timestamp(),
                    },
                )
            self._apply_delta(conn, lease.run_id, delta)

    def _insert_attempt(
        self, conn: Connection, run_id: str, attempt: NewAttempt, now: datetime
    ) -> None:
        conn.execute(
            insert(t.attempts),
            {
                "run_id": run_id,
                "step_hash": attempt.step_hash,
                "step_id": attempt.step_id,
                "attempt": attempt.attempt,
                "error": attempt.error,
                "started_at": attempt.started_at.timestamp(),
                "ended_at": now.timestamp(),
                "retry_at": None if attempt.retry_at is None else attempt.retry_at.timestamp(),
            },
        )

    def finish_run(
        self,
        lease: Lease,
        status: RunStatus,
        delta: RunDelta,
        now: datetime,
        *,
        output: str | None = None,
        error: str | None = None,
        attempt: NewAttempt | None = None,
    ) -> None:
        """End a run: COMPLETED with output, or FAILED with error; removes its queue item."""
        q = t.queue.c
        with self._write() as conn:
            gone = conn.execute(
                delete(t.queue).where(q.run_id == lease.run_id, q.lease_owner == lease.owner)
            )
            if gone.rowcount != 1:
                raise errors.LeaseLost(f"run {lease.run_id} is no longer leased by {lease.owner}")
            values: dict[str, Any] = {
                "status": status,
                "detail": None,
                "output": output,
                "error": error,
                "ended_at": now.timestamp(),
            }
            if attempt is not None:
                self._insert_attempt(conn, lease.run_id, attempt, now)
                values["failures"] = t.runs.c.failures + 1
            conn.execute(update(t.runs).where(t.runs.c.id == lease.run_id).values(values))
            conn.execute(delete(t.waits).where(t.waits.c.run_id == lease.run_id))
            self._apply_delta(conn, lease.run_id, delta)

    def save_progress(self, lease: Lease, delta: RunDelta) -> None:
        """Save progress and log lines between commits; silently skipped if the lease is gone."""
        q = t.queue.c
        with self._write() as conn:
            held = conn.execute(
                select(q.run_id).where(q.run_id == lease.run_id, q.lease_owner == lease.owner)
            ).first()
            if held is not None:
                self._apply_delta(conn, lease.run_id, delta)

    def _end_active_run(
        self, conn: Connection, run_id: str, status: RunStatus, now: datetime, error: str | None
    ) -> bool:
        r = t.runs.c
        done = conn.execute(
            update(t.runs).where(r.id == run_id, r.status.in_(ACTIVE_STATUSES)),
            {"status": status, "detail": None, "ended_at": now.timestamp(), "error": error},
        )
        conn.execute(delete(t.queue).where(t.queue.c.run_id == run_id))
        conn.execute(delete(t.waits).where(t.waits.c.run_id == run_id))
        return done.rowcount == 1

    def cancel_run(self, run_id: str, now: datetime) -> RunRecord:
        """Cancel a queued, running, sleeping or waiting run; a no-op on an ended run."""
        with self._write() as conn:
            self._end_active_run(conn, run_id, "CANCELLED", now, None)
            row = conn.execute(select(t.runs).where(t.runs.c.id == run_id)).mappings().first()
        if row is None:
            raise errors.NotFound(f"no run with id {run_id!r}")
        return RunRecord.from_row(row)

    def fail_timed_out_runs(self, now: datetime) -> list[str]:
        """FAIL every active run whose timeout has passed; returns their ids."""
        q = t.queue.c
        with self._write() as conn:
            ids = list(
                conn.execute(select(q.run_id).where(q.timeout_at <= now.timestamp())).scalars()
            )
            for run_id in ids:
                timeout = conn.execute(
                    select(t.runs.c.timeout_seconds).where(t.runs.c.id == run_id)
                ).scalar()
                error = json.dumps(
                    {
                        "name": TIMEOUT_ERROR,
                        "message": f"run exceeded its timeout of {timeout:g}s",
                        "traceback": "",
                    }
                )
                self._end_active_run(conn, run_id, "FAILED", now, error)
        return ids

    # -- reading -----------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord:
        """One run; raises `NotFound`."""
        with self._read() as conn:
            row = conn.execute(select(t.runs).where(t.runs.c.id == run_id)).mappings().first()
        if row is None:
            raise errors.NotFound(f"no run with id {run_id!r}")
        return RunRecord.from_row(row)

    def list_runs(self, run_filter: RunFilter) -> list[RunRecord]:
        """Runs matching the filter, newest first."""
        r = t.runs.c
        query = select(t.runs).order_by(r.created_at.desc(), r.id.desc()).limit(run_filter.limit)
        if run_filter.function_id is not None:
            query = query.where(r.function_id == run_filter.function_id)
        if run_filter.status is not None:
            query = query.where(r.status == run_filter.status)
        if run_filter.trigger_kind is not None:
            query = query.where(r.trigger_kind == run_filter.trigger_kind)
        if run_filter.event_id is not None:
            event = self._find_event(run_filter.event_id)
            query = query.where(r.event_id == (event.internal_id if event else run_filter.event_id))
        with self._read() as conn:
            if run_filter.before is not None:
                cursor = conn.execute(
                    select(r.created_at).where(r.id == run_filter.before)
                ).scalar()
                if cursor is not None:
                    query = query.where(
                        or_(
                            r.created_at < cursor,
                            and_(r.created_at == cursor, r.id < run_filter.before),
                        )
                    )
            return [RunRecord.from_row(m) for m in conn.execute(query).mappings()]

    def get_steps(self, run_id: str) -> list[StepRecord]:
        """A run's steps in the order they were first reached."""
        with self._read() as conn:
            rows = conn.execute(
                select(t.steps).where(t.steps.c.run_id == run_id).order_by(t.steps.c.position)
            ).mappings()
            return [StepRecord.from_row(m) for m in rows]

    def get_attempts(self, run_id: str) -> list[AttemptRecord]:
        """A run's failed attempts, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                select(t.attempts).where(t.attempts.c.run_id == run_id).order_by(t.attempts.c.seq)
            ).mappings()
            return [AttemptRecord.from_row(m) for m in rows]

    def get_logs(self, run_id: str) -> list[LogRecord]:
        """A run's log lines, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                select(t.run_logs).where(t.run_logs.c.run_id == run_id).order_by(t.run_logs.c.seq)
            ).mappings()
            return [LogRecord.from_row(m) for m in rows]

    def _find_event(self, event_id: str) -> EventRecord | None:
        e = t.events.c
        with self._read() as conn:
            row = conn.execute(select(t.events).where(e.internal_id == event_id)).mappings().first()
            if row is None:
                row = (
                    conn.execute(
                        select(t.events).where(e.id == event_id).order_by(e.received_at.desc())
                    )
                    .mappings()
                    .first()
                )
        return None if row is None else EventRecord.from_row(row)

    def get_event(self, internal_id: str) -> EventRecord:
        """One event by its internal id (or the sender's id); raises `NotFound`."""
        event = self._find_event(internal_id)
        if event is None:
            raise errors.NotFound(f"no event with id {internal_id!r}")
        return event

    def list_events(self, name: str | None, limit: int, before: str | None) -> list[EventRecord]:
        """Events, newest first."""
        e = t.events.c
        query = select(t.events).order_by(e.internal_id.desc()).limit(limit)
        if name is not None:
            query = query.where(e.name == name)
        if before is not None:
            query = query.where(e.internal_id < before)
        with self._read() as conn:
            return [EventRecord.from_row(m) for m in conn.execute(query).mappings()]


def _event_row(event: EventRecord) -> dict[str, Any]:
    return {
        "internal_id": event.internal_id,
        "id": event.id,
        "name": event.name,
        "data": event.data,
        "user": event.user,
        "ts": event.ts,
        "received_at": event.received_at.timestamp(),
        "source": event.source,
    }


def _step_row(step: StepRecord) -> dict[str, Any]:
    return {
        "run_id": step.run_id,
        "hash": step.hash,
        "id": step.id,
        "kind": step.kind,
        "status": step.status,
        "position": step.position,
        "output": step.output,
        "error": step.error,
        "attempts": step.attempts,
        "started_at": step.started_at.timestamp(),
        "ended_at": None if step.ended_at is None else step.ended_at.timestamp(),
        "wake_at": None if step.wake_at is None else step.wake_at.timestamp(),
    }

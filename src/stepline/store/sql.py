"""Every query, written once in SQLAlchemy Core; backends add only engine setup and hooks.

The frequent writes (claims, step commits, parking and finishing runs, ingesting events,
heartbeats) are Core statements compiled once per store (`_Statements`, see `_prepared`) and run
on a raw DBAPI connection inside `SqlStore._transaction`; SQLAlchemy's per-execution overhead
would otherwise cost several times what the database itself does. Rare writes and all reads go
through SQLAlchemy `Connection`s as usual.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Double,
    Engine,
    Integer,
    Select,
    String,
    Table,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.expression import (
    ReleaseSavepointClause,
    RollbackToSavepointClause,
    SavepointClause,
)

from stepline import errors
from stepline.store import schema as t
from stepline.store._nesting import ConnectionGuard
from stepline.store._prepared import Prepared, RawTransaction, Row
from stepline.store.access import AccessMixin
from stepline.store.admission import Admission, AdmissionStatements, AdmittingMixin
from stepline.store.apps import AppsMixin, AppStatements
from stepline.store.base import (
    ACTIVE_STATUSES,
    FINISHED_EVENT,
    AttemptRecord,
    ClaimedRun,
    CronState,
    EventRecord,
    EventRouting,
    FunctionRecord,
    FunctionStats,
    LeaderLock,
    Lease,
    LogRecord,
    NewAttempt,
    NewRun,
    NewWait,
    RunDelta,
    RunEnd,
    RunFilter,
    RunRecord,
    RunStatus,
    StepRecord,
    TriggerKind,
    WaitRecord,
    WorkerRecord,
    from_epoch,
    reclaim_log,
)
from stepline.store.blobs import BlobsMixin, BlobStatements
from stepline.store.cancellation import CancellationMixin, CancellationStatements
from stepline.store.endings import EndingsMixin, EndingStatements
from stepline.store.group_commit import GroupCommit
from stepline.store.insights import InsightsMixin
from stepline.store.retention import RetentionMixin
from stepline.store.schema import REGISTRY_ROW
from stepline.store.slots import (
    SLOT_COLUMNS,
    SlotsMixin,
    SlotStatements,
    full_keys_read,
    is_keyed,
)
from stepline.store.tally import StoreTally, count_statements

EVENT_ID_TTL = timedelta(hours=24)
# Steps a run parks on, completed later by their own commit (or, for an invoke, by its run).
_SETTLED_KINDS = ("sleep", "wait", "invoke")
_PARKED_STATUSES = ("sleeping", "waiting")
TIMEOUT_ERROR = "RunTimeout"
# A worker silent for this long is forgotten when another registers.
FORGET_WORKERS_SECONDS = 24 * 3600.0
# Ids per statement when acting on many runs at once (well under every driver's parameter cap).
CHUNK = 500

_RUN_COLUMNS = (
    "id",
    "function_id",
    "status",
    "trigger_kind",
    "trigger_by",
    "trigger_reason",
    "event_id",
    "event_ids",
    "replay_of",
    "idempotency_key",
    "attempt",
    "failures",
    "created_at",
    "timeout_seconds",
    "counters",
    "saved_before_step",
    "dry_run",
    # Flow control and composition (left out for a plain run: `_PLAIN_RUN_COLUMNS`).
    "detail",
    "reason",
    "ended_at",
    "parent_run_id",
    "parent_step",
    "start_by",
)
_PLAIN_RUN_COLUMNS = _RUN_COLUMNS.index("detail")
_STEP_UPDATE_COLUMNS = (
    "id",
    "kind",
    "status",
    "position",
    "output",
    "error",
    "attempts",
    "started_at",
    "ended_at",
    "wake_at",
)


def _columns(table: Table) -> list[str]:
    """Every column an INSERT sets: all but the autoincrement sequence number."""
    return [column.name for column in table.columns if column.name != "seq"]


def _ids(name: str) -> Any:
    """An IN-list parameter (expanded to the list's length by `Prepared`)."""
    return bindparam(name, expanding=True)


class _Statements:
    """The hot statements, written in Core and compiled once for the store's dialect."""

    def __init__(self, dialect: Dialect) -> None:
        def prepare(statement: ClauseElement, columns: Sequence[str] | None = None) -> Prepared:
            return Prepared(statement, dialect, columns)

        self._events_and_runs(prepare)
        self._queue(prepare)
        self._steps(prepare)

    def _events_and_runs(self, prepare: Callable[..., Prepared]) -> None:
        e, ids, r, w, s = t.events.c, t.event_ids.c, t.runs.c, t.waits.c, t.steps.c
        self.routable_functions = prepare(
            select(t.functions).where(t.functions.c.paused.is_(False))
        )
        self.registry_version = prepare(
            select(t.registry_version.c.version).where(t.registry_version.c.id == REGISTRY_ROW)
        )
        self.insert_event = prepare(insert(t.events), _columns(t.events))
        self.event = prepare(select(t.events).where(e.internal_id == bindparam("internal_id")))
        self.events = prepare(select(t.events).where(e.internal_id.in_(_ids("internal_ids"))))
        self.run_origins = prepare(
            select(r.id, r.trigger_kind, r.trigger_by).where(r.id.in_(_ids("run_ids")))
        )
        self.event_id_holder = prepare(
            select(ids.internal_id, ids.expires_at).where(ids.id == bindparam("key"))
        )
        self.insert_event_id = prepare(insert(t.event_ids), _columns(t.event_ids))
        self.take_event_id = prepare(
            update(t.event_ids).where(ids.id == bindparam("key")), ["internal_id", "expires_at"]
        )
        # A run without flow control needs none of the flow columns (they default to null).
        self.insert_run = prepare(insert(t.runs), _RUN_COLUMNS)
        self.insert_plain_run = prepare(insert(t.runs), _RUN_COLUMNS[:_PLAIN_RUN_COLUMNS])
        self.insert_queue_item = prepare(
            insert(t.queue),
            ["run_id", "function_id", "available_at", "priority", "timeout_at", *SLOT_COLUMNS],
        )
        self.insert_plain_queue_item = prepare(
            insert(t.queue), ["run_id", "function_id", "available_at", "priority"]
        )
        # The constructs Core's own `begin_nested()` executes (untyped in SQLAlchemy).
        self.savepoint = prepare(SavepointClause("new_run"))  # type: ignore[no-untyped-call]
        self.release_savepoint = prepare(
            ReleaseSavepointClause("new_run")  # type: ignore[no-untyped-call]
        )
        self.rollback_to_savepoint = prepare(
            RollbackToSavepointClause("new_run")  # type: ignore[no-untyped-call]
        )
        listeners = t.cancel_listeners.c
        self.waited_names = prepare(
            select(w.event_name).distinct().where(w.event_name.in_(_ids("names")))
        )
        # What an intake reads first, in one trip: the registry's version ("registry"), and the
        # names among its events that runs wait for ("wait") or that cancel runs ("cancel").
        self.intake_view = prepare(
            union_all(
                select(
                    literal("registry").label("kind"),
                    cast(t.registry_version.c.version, String).label("name"),
                ).where(t.registry_version.c.id == REGISTRY_ROW),
                select(literal("wait").label("kind"), w.event_name.label("name"))
                .distinct()
                .where(w.event_name.in_(_ids("names"))),
                select(literal("cancel").label("kind"), listeners.event_name.label("name"))
                .distinct()
                .where(listeners.event_name.in_(_ids("cancel_names"))),
            )
        )
        self.waits_for = prepare(
            select(t.waits, r.event_id)
            .join(t.runs, r.id == w.run_id)
            .where(w.event_name == bindparam("name"), w.expires_at > bindparam("now"))
            .order_by(w.seq)
        )
        self.resolve_wait_step = prepare(
            update(t.steps).where(
                s.run_id == bindparam("run_id"),
                s.hash == bindparam("step_hash"),
                s.status == "waiting",
            ),
            ["status", "output", "ended_at"],
        )

    def _queue(self, prepare: Callable[..., Prepared]) -> None:
        q, r = t.queue.c, t.runs.c
        run_id, owner = bindparam("run_id", type_=String), bindparam("owner", type_=String)

        def claim(due: Any, *order: Any) -> Prepared:
            # Lease up to `limit` items in one statement; SKIP LOCKED lets concurrent claimers
            # pass each other on PostgreSQL (SQLite has one writer and ignores it).
            candidates = (
                select(q.run_id)
                .where(due, q.function_id.in_(_ids("function_ids")))
                .order_by(*order)
                .limit(bindparam("limit"))
                .with_for_update(skip_locked=True)
            )
            return lease(q.run_id.in_(candidates))

        def lease(which: Any) -> Prepared:
            return prepare(
                update(t.queue)
                .where(which)
                .values(
                    lease_owner=owner,
                    lease_expires_at=bindparam("until"),
                    step_id=None,
                    step_started_at=None,
                )
                .returning(q.run_id, t.CLAIM_ORDER.label("claim_order"), *t.queue.c[SLOT_COLUMNS])
            )

        # Each lookup matches a partial index (schema.py), so neither scans the queue. Items
        # of a concurrency key with no free slot (`full`) are left for later (`slots`).
        full = _ids("full")
        self.claim_ready = claim(
            and_(
                q.lease_owner.is_(None),
                q.available_at <= bindparam("now"),
                # Past its deadline (to start, or to finish), it is the scheduler's to end.
                or_(q.timeout_at.is_(None), q.timeout_at > bindparam("now")),
                or_(q.slot_key_1.is_(None), q.slot_key_1.not_in(full)),
                or_(q.slot_key_2.is_(None), q.slot_key_2.not_in(full)),
            ),
            t.CLAIM_ORDER,
        )
        # Expired leases are read before they are taken over: the run's log names the worker
        # that lost it (`Store.claim_runs`).
        self.expired_leases = prepare(
            select(q.run_id, q.lease_owner, q.lease_expires_at)
            .where(
                q.lease_owner.is_not(None),
                q.lease_expires_at <= bindparam("now"),
                q.function_id.in_(_ids("function_ids")),
            )
            .order_by(q.lease_expires_at)
            .limit(bindparam("limit"))
            .with_for_update(skip_locked=True)
        )
        self.take_over = lease(q.run_id.in_(_ids("run_ids")))
        self.earliest_lease_expiry = prepare(
            select(func.min(q.lease_expires_at)).where(
                q.lease_owner.is_not(None), q.lease_expires_at > bindparam("now")
            )
        )
        now = bindparam("now", type_=Double)
        # Queued or resumed: executing now, no longer sleeping, waiting or retrying.
        self.start_runs = prepare(
            update(t.runs)
            .where(r.id.in_(_ids("run_ids")))
            .values(
                status="RUNNING",
                detail=None,
                started_at=func.coalesce(r.started_at, now),
                timeout_at=func.coalesce(r.timeout_at, now + r.timeout_seconds),
            )
            .returning(
                *t.runs.c,
                # Uncorrelated (SQLite's RETURNING drops the table names): which have steps.
                r.id.in_(
                    select(t.steps.c.run_id).where(t.steps.c.run_id.in_(_ids("run_ids")))
                ).label("has_steps"),
            )
        )
        # A started run's deadline replaces its start deadline (`start_by`), if any.
        self.queue_timeout = prepare(
            update(t.queue).where(q.run_id == run_id).values(timeout_at=bindparam("at"))
        )
        self.extend_leases = prepare(
            update(t.queue)
            .where(q.run_id.in_(_ids("run_ids")), q.lease_owner == owner)
            .values(lease_expires_at=bindparam("until"))
            .returning(q.run_id)
        )
        held = and_(q.run_id == run_id, q.lease_owner == owner)
        self.note_step = prepare(
            update(t.queue)
            .where(held)
            .values(step_id=bindparam("step_id"), step_started_at=bindparam("started_at"))
        )
        self.step_in_flight = prepare(
            select(q.step_id, q.step_started_at).where(
                q.run_id == run_id, q.lease_owner.is_not(None), q.step_id.is_not(None)
            )
        )
        self.holds = prepare(select(q.run_id).where(held))
        self.hold = prepare(update(t.queue).where(held).values(lease_expires_at=bindparam("until")))
        self.release = prepare(
            update(t.queue)
            .where(held)
            .values(available_at=bindparam("at"), lease_owner=None, lease_expires_at=None)
        )
        self.drop_queue_item = prepare(delete(t.queue).where(held))
        self.make_due = prepare(update(t.queue).where(q.run_id == run_id), ["available_at"])
        self.run = prepare(select(t.runs).where(r.id == run_id))
        self.timed_out = prepare(
            select(r.id, r.started_at, r.start_by, r.created_at, r.timeout_seconds)
            .join(t.runs, r.id == q.run_id)
            .where(q.timeout_at <= bindparam("now"))
        )
        # Another run's queue row, locked before its wait and step (workers' order; `_resume`).
        self.lock_queue_item = prepare(select(q.run_id).where(q.run_id == run_id).with_for_update())

    def _steps(self, prepare: Callable[..., Prepared]) -> None:
        r, s, a, w, c = t.runs.c, t.steps.c, t.attempts.c, t.waits.c, t.cron_state.c
        run = r.id == bindparam("run_id")
        failed = r.failures + bindparam("failed", type_=Integer)
        self.insert_step = prepare(insert(t.steps), _columns(t.steps))
        # A step inserted only while `lease_run_id` is leased by `owner` (a parallel branch
        # writes its parent's steps): the lease check and the write in one statement (0 rows:
        # the lease is lost). FOR SHARE on PostgreSQL: a
        # takeover of the lease waits for this transaction, then sees the step.
        lease_held = (
            select(t.queue.c.run_id)
            .where(
                t.queue.c.run_id == bindparam("lease_run_id"),
                t.queue.c.lease_owner == bindparam("owner"),
            )
            .with_for_update(read=True)
            .exists()
        )
        step_values = [bindparam(name, type_=t.steps.c[name].type) for name in _columns(t.steps)]
        self.insert_held_step = prepare(
            insert(t.steps).from_select(_columns(t.steps), select(*step_values).where(lease_held))
        )
        parked = and_(
            s.run_id == bindparam("run_id"),
            s.hash == bindparam("hash"),
            s.status.in_(_PARKED_STATUSES),
        )
        self.settle_step = prepare(update(t.steps).where(parked), _STEP_UPDATE_COLUMNS)
        # The same, only while the lease is held (0 rows: not parked, or the lease is lost).
        self.settle_held_step = prepare(
            update(t.steps).where(parked, lease_held), _STEP_UPDATE_COLUMNS
        )
        self.steps_of_runs = prepare(
            select(t.steps).where(s.run_id.in_(_ids("run_ids"))).order_by(s.position)
        )
        self.failures_of_runs = prepare(
            select(a.run_id, a.step_hash, func.count().label("n"))
            .where(a.run_id.in_(_ids("run_ids")))
            .group_by(a.run_id, a.step_hash)
        )
        self.insert_attempt = prepare(insert(t.attempts), _columns(t.attempts))
        self.insert_log = prepare(insert(t.run_logs), _columns(t.run_logs))
        self.insert_wait = prepare(insert(t.waits), _columns(t.waits))
        self.delete_wait = prepare(
            delete(t.waits).where(
                w.run_id == bindparam("run_id"), w.step_hash == bindparam("step_hash")
            )
        )
        self.delete_waits = prepare(delete(t.waits).where(w.run_id == bindparam("run_id")))
        self.add_failure = prepare(update(t.runs).where(run).values(failures=failed))
        self.park = prepare(
            update(t.runs)
            .where(run)
            .values(
                failures=failed,
                attempt=func.coalesce(bindparam("next_attempt", type_=Integer), r.attempt),
                saved_before_step=func.coalesce(
                    bindparam("saved_before_step", type_=Integer), r.saved_before_step
                ),
            ),
            ["detail"],
        )
        # With what `endings` needs to decide on `stepline/function.finished`, in one trip.
        version = select(t.registry_version.c.version).where(
            t.registry_version.c.id == REGISTRY_ROW
        )
        finished_waited = select(w.run_id).where(w.event_name == FINISHED_EVENT).exists()
        has_waits = select(w.run_id).where(w.run_id == bindparam("run_id")).exists()
        self.finish = prepare(
            update(t.runs)
            .where(run)
            .values(failures=failed)
            .returning(
                version.scalar_subquery().label("registry_version"),
                finished_waited.label("finished_waited"),
                has_waits.label("has_waits"),
            ),
            ["status", "detail", "output", "error", "ended_at"],
        )
        self.counters = prepare(select(r.counters).where(run))
        self.set_counters = prepare(update(t.runs).where(run), ["counters"])
        self.set_progress = prepare(
            update(t.runs).where(run),
            ["progress_done", "progress_total", "progress_message", "progress_at"],
        )
        self.set_saved_before_step = prepare(update(t.runs).where(run), ["saved_before_step"])
        tick = and_(c.function_id == bindparam("fn"), c.schedule == bindparam("sched"))
        self.function_paused = prepare(
            select(t.functions.c.paused).where(t.functions.c.id == bindparam("fn"))
        )
        self.last_tick = prepare(select(c.last_tick).where(tick))
        self.insert_tick = prepare(insert(t.cron_state), _columns(t.cron_state))
        self.set_tick = prepare(
            update(t.cron_state)
            .where(tick)
            .values(
                last_tick=bindparam("last_tick"),
                missed_total=c.missed_total + bindparam("missed", type_=Integer),
            )
        )


class _EveryoneLeads:
    """A leader lock that is always granted."""

    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass


class SqlStore(
    AdmittingMixin,
    AppsMixin,
    EndingsMixin,
    CancellationMixin,
    SlotsMixin,
    InsightsMixin,
    AccessMixin,
    RetentionMixin,
    BlobsMixin,
):
    """The Store implementation shared by SQLite and PostgreSQL.

    Hooks for subclasses: `_raw_connection` (the hot path's write transaction),
    `_write_transaction` and `_read_connection` (SQLAlchemy connections for the rest), and
    `_translate` / `_translate_driver` (driver errors → `Conflict` / `StoreUnavailable`).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._wakeups: list[Callable[[], None]] = []
        self._end_listeners: list[Callable[[list[str]], None]] = []
        self._ended_here = threading.local()  # runs ended by this thread's open transaction
        self.tally = StoreTally()  # errors, outages and ended runs, for this process's metrics
        count_statements(engine, self.tally)
        self._sql = _Statements(engine.dialect)

        def prepare(statement: ClauseElement, columns: Sequence[str] | None = None) -> Prepared:
            return Prepared(statement, engine.dialect, columns)

        self._admission = Admission(AdmissionStatements(engine.dialect, prepare))
        self._endings = EndingStatements(prepare)
        self._cancellation = CancellationStatements(prepare)
        self._slots = SlotStatements(prepare)
        self._apps = AppStatements(prepare)
        self._blob_statements = BlobStatements(engine.dialect, prepare)
        self._blob_dir: Path | None = None  # blobs' bytes: in `blob_chunks` unless set
        dbapi = engine.dialect.loaded_dbapi
        self._driver_error: type[Exception] = dbapi.Error
        self._integrity_error: type[Exception] = dbapi.IntegrityError
        self._guard = ConnectionGuard()
        self._group = GroupCommit(
            self._transaction,
            self._unit_error,
            retryable=self._retryable,
        )
        # (registry version, unpaused functions): routing's copy of the registry.
        self._functions: tuple[int, list[FunctionRecord]] | None = None
        self._triggered: dict[str, bool] = {}  # event name → a function triggers on it
        self._no_expiry_before = 0.0  # no lease expires before (epoch seconds; claim_runs)

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
    def _raw_connection(self) -> Iterator[Any]:
        """A DBAPI connection of the engine's pool, in a transaction that `_transaction` ends.

        DBAPI drivers outside autocommit open the transaction implicitly.
        """
        fairy = self.engine.raw_connection()
        try:
            yield fairy.dbapi_connection
        finally:
            fairy.close()

    def _announce(self, tx: RawTransaction) -> None:
        """Tell other processes, at commit, that work became available (PostgreSQL: NOTIFY)."""

    def _translate_driver(self, error: Exception) -> errors.StoreError:
        """Classify an error raised by the DBAPI driver itself (the raw write path)."""
        if isinstance(error, self._integrity_error):
            return errors.Conflict(str(error))
        return errors.StoreUnavailable(f"database error: {error}")

    @contextmanager
    def _transaction(self) -> Iterator[RawTransaction]:
        """One write transaction on a raw DBAPI connection: commits, or rolls back on error.

        Driver errors leave as `Conflict` or `StoreUnavailable` (`__cause__` kept).
        """
        self._guard.enter()
        self._ended_here.runs = []
        try:
            with self._raw_connection() as connection:
                try:
                    tx = RawTransaction(connection)
                    yield tx
                    connection.commit()
                except BaseException:
                    with suppress(self._driver_error):  # a broken connection cannot roll back
                        connection.rollback()
                    raise
        except self._driver_error as exc:
            raise self._failed(self._translate_driver(exc)) from exc
        finally:
            self._guard.leave()
        self.tally.succeeded(tx.statements)
        self._report_ended()

    def _retryable(self, error: BaseException) -> bool:
        """Hook: a driver error after which the same transaction may simply run again."""
        return False

    def _unit_error(self, error: BaseException) -> BaseException:
        """The error a group commit's caller sees for what its unit raised (`GroupCommit`)."""
        if isinstance(error, self._driver_error):
            return self._failed(self._translate_driver(error))
        return error

    def _quick_read(self, statement: Prepared, **params: Any) -> Row | None:
        """The first row of one prepared query, on a driver connection (per-request reads).

        Errors leave as `StoreError`s (`__cause__` kept), as with `_read`.
        """
        self._guard.enter()
        try:
            row = self._read_first(statement, params)
        except DBAPIError as exc:
            raise self._failed(self._translate(exc)) from exc
        except self._driver_error as exc:
            raise self._failed(self._translate_driver(exc)) from exc
        finally:
            self._guard.leave()
        self.tally.succeeded(1, wrote=False)
        return row

    def _read_first(self, statement: Prepared, params: Mapping[str, Any]) -> Row | None:
        """Hook: run `_quick_read`'s query (here on a connection of the readers' pool)."""
        with self._read_connection() as conn:
            return RawTransaction(conn.connection.dbapi_connection).first(statement, **params)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        self._guard.enter()
        try:
            with self._write_transaction() as conn:
                yield conn
        except DBAPIError as exc:
            raise self._failed(self._translate(exc)) from exc
        finally:
            self._guard.leave()
        self.tally.succeeded()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        self._guard.enter()
        try:
            with self._read_connection() as conn:
                yield conn
        except DBAPIError as exc:
            raise self._failed(self._translate(exc)) from exc
        finally:
            self._guard.leave()
        self.tally.succeeded(wrote=False)

    def _failed(self, error: errors.StoreError) -> errors.StoreError:
        """`error`, counted in the tally (an unavailable database starts an outage)."""
        self.tally.failed(error)
        return error

    # -- lifecycle ---------------------------------------------------------------------------

    def upgrade(self) -> None:
        """Apply pending schema migrations."""
        from stepline.store.migrate import upgrade

        upgrade(self.engine)

    def check_schema(self) -> None:
        """Raise `SchemaOutOfDate` unless the database is at this version's newest revision.

        An unreachable database raises `StoreUnavailable`.
        """
        from stepline.store.migrate import check

        try:
            check(self.engine)
        except DBAPIError as exc:
            raise self._translate(exc) from exc

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()

    def leader_lock(self) -> LeaderLock:
        """The scheduler-leader lock; here every scheduler leads.

        On one machine the constraints alone keep each cron tick to one run; PostgreSQL
        elects one leader to spare the database the contention.
        """
        return _EveryoneLeads()

    def add_wakeup(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever this process makes work available."""
        self._wakeups.append(callback)

    def _wake(self) -> None:
        for callback in self._wakeups:
            callback()

    def add_end_listener(self, callback: Callable[[list[str]], None]) -> None:
        """Call `callback(run_ids)` once a transaction of this process ended runs (cancel, timeout).

        The workers executing them stop them at once, not at their next heartbeat.
        """
        self._end_listeners.append(callback)

    def _ended(self, tx: RawTransaction, end: RunEnd) -> None:
        """Note a run ended by `_end_run`; its listeners hear of it once `tx` commits."""
        self._ended_here.runs.append(end)

    def _report_ended(self) -> None:
        """After a commit: tell the end listeners which runs that transaction ended; count them.

        Parallel branches are part of their parent's run and are not counted.
        """
        ended: list[RunEnd] = self._ended_here.runs
        if ended:
            self._ended_here.runs = []
            self.tally.ended(
                (end.function_id, end.status) for end in ended if end.trigger_kind != "parallel"
            )
            self._tell_ended([end.run_id for end in ended])

    def _tell_ended(self, run_ids: list[str]) -> None:
        for callback in self._end_listeners:
            callback(run_ids)

    # -- functions ---------------------------------------------------------------------------

    def sync_functions(
        self, app_id: str, functions: Sequence[FunctionRecord], now: datetime
    ) -> None:
        """Register a Python app's functions, replacing their previous configuration."""
        with self._write() as conn:
            _bump_registry_version(conn)
            _record_python_app(conn, app_id, functions, now)
            for fn in functions:
                values = {
                    "app_id": app_id,
                    "name": fn.name,
                    "config": fn.config,
                    "updated_at": now.timestamp(),
                }
                done = conn.execute(update(t.functions).where(t.functions.c.id == fn.id), values)
                if done.rowcount == 0:
                    try:
                        with conn.begin_nested():
                            conn.execute(
                                insert(t.functions), {"id": fn.id, "paused": False, **values}
                            )
                    except IntegrityError:  # another worker registered it a moment ago
                        conn.execute(update(t.functions).where(t.functions.c.id == fn.id), values)

    def list_functions(self) -> list[FunctionRecord]:
        """All registered functions, by id."""
        with self._read() as conn:
            rows = conn.execute(select(t.functions).order_by(t.functions.c.id)).mappings()
            return [FunctionRecord.from_row(r) for r in rows]

    def set_function_paused(
        self,
        function_id: str,
        paused: bool,
        now: datetime | None = None,
        *,
        by: str | None = None,
        reason: str | None = None,
    ) -> FunctionRecord:
        """Pause or resume a function; returns it. Idempotent; raises `NotFound`.

        Pausing a paused function keeps its first pause's record; resuming clears it.
        """
        f = t.functions.c
        record: dict[str, Any] = {"paused_at": None, "paused_by": None, "pause_reason": None}
        if paused:
            at = (now or datetime.now(UTC)).timestamp()
            record = {"paused_at": at, "paused_by": by, "pause_reason": reason}
        with self._write() as conn:
            _bump_registry_version(conn)
            conn.execute(
                update(t.functions)
                .where(f.id == function_id, f.paused.is_(not paused))
                .values(paused=paused, **record)
            )
            row = conn.execute(select(t.functions).where(f.id == function_id)).mappings().first()
        if row is None:
            raise errors.NotFound(f"no function with id {function_id!r}")
        return FunctionRecord.from_row(row)

    def function_stats(self, since: datetime) -> dict[str, FunctionStats]:
        """Per function id: its newest run, and the runs ended at or after `since` by status."""
        r, f = t.runs.c, t.functions.c
        ended: dict[str, dict[str, int]] = {}
        newest = t.runs.alias("newest")
        # Correlated per function: one (function_id, created_at) index probe each, no scan (ties
        # on created_at are sorted alone: SQLite's "right part of ORDER BY", PG's incremental).
        latest_id = (
            select(newest.c.id)
            .where(newest.c.function_id == f.id)
            .order_by(newest.c.created_at.desc(), newest.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        with self._read() as conn:
            # Grouping by an expression, not the bare column: without statistics SQLite would
            # rather read every run through the (function_id, status, ...) index, in group
            # order, than range-scan the covering `ended_at` index and sort the few it finds.
            function_key = r.function_id.concat("").label("function_id")
            counts = conn.execute(
                select(function_key, r.status, func.count().label("n"))
                .where(r.ended_at >= since.timestamp())
                .group_by(function_key, r.status)
            )
            for function_id, status, n in counts:
                ended.setdefault(function_id, {})[status] = int(n)
            last = {
                row["function_id"]: RunRecord.from_row(row)
                for row in conn.execute(
                    select(t.runs).join(t.functions, r.id == latest_id)
                ).mappings()
            }
        return {
            function_id: FunctionStats(
                function_id=function_id,
                last_run=last.get(function_id),
                ended=ended.get(function_id, {}),
            )
            for function_id in sorted(set(ended) | set(last))
        }

    def _intake_view(
        self, tx: RawTransaction, events: Sequence[EventRecord]
    ) -> tuple[list[FunctionRecord], set[str], set[str]]:
        """The unpaused functions now; the names among `events` runs wait for, and that cancel.

        The functions are as of this transaction, whichever process changed them. One
        statement reads the registry's version and the names; the functions are read again
        only when the version moved. Every registry change bumps it first, in its own
        transaction, so:

        - SQLite: the transaction holds the write lock (BEGIN IMMEDIATE) from its start, so no
          change can commit between the two reads; both see the same registry.
        - PostgreSQL (READ COMMITTED, one snapshot per statement): a change that commits
          between the version read and the functions read makes the functions newer than
          their version. Routing with them is right (they were committed first), and the next
          transaction sees the newer version and reads again, so the copy is never older than
          the version it is filed under. A change that commits after the version read, while
          this transaction runs, was not acknowledged when it began: the two overlap, and
          routing before the change is a valid order. Any event sent after a change was
          acknowledged reads its version, hence its registry.
        """
        names = sorted({event.name for event in events})
        found: dict[str, set[str]] = {"registry": set(), "wait": set(), "cancel": set()}
        for row in tx.rows(self._sql.intake_view, names=names, cancel_names=names):
            found[row["kind"]].add(row["name"])
        [version] = found["registry"]
        return self._functions_at(tx, int(version)), found["wait"], found["cancel"]

    def _functions_at(self, tx: RawTransaction, version: int) -> list[FunctionRecord]:
        """The unpaused functions filed under registry `version`, read again if it moved."""
        cached = self._functions
        if cached is not None and cached[0] == version:
            return cached[1]
        functions = [FunctionRecord.from_row(r) for r in tx.rows(self._sql.routable_functions)]
        self._functions = (version, functions)
        self._triggered = {}
        return functions

    def _triggers_on(
        self, tx: RawTransaction, version: int, name: str, routing: EventRouting
    ) -> bool:
        """Whether a function of registry `version` triggers on `name` (cached per version)."""
        functions = self._functions_at(tx, version)
        if name not in self._triggered:
            self._triggered[name] = routing.triggers_on(name, functions)
        return self._triggered[name]

    # -- events and runs ---------------------------------------------------------------------

    def ingest_events(
        self, events: Sequence[EventRecord], routing: EventRouting, now: datetime
    ) -> list[str]:
        """Store events, start the runs they trigger and resume the waits they satisfy."""

        def ingest(tx: RawTransaction) -> tuple[list[str], bool]:
            ids, woke = self._ingest(tx, events, routing, now)
            if woke:
                self._announce(tx)
            return ids, woke

        ids, woke = self._group.run(ingest)
        if woke:
            self._wake()
        return ids

    def _ingest(
        self,
        tx: RawTransaction,
        events: Sequence[EventRecord],
        routing: EventRouting,
        now: datetime,
    ) -> tuple[list[str], bool]:
        """Store events; cancel the runs they cancel, start the runs they start, resume waits.

        Cancellations come before new runs: an event never cancels a run it starts itself.
        """
        if not events:
            return [], False
        functions, waited, cancelling = self._intake_view(tx, events)
        ids: list[str] = []
        woke = False
        for event in events:
            existing = self._claim_event_id(tx, event, now)
            if existing is not None:
                ids.append(existing)
                continue
            tx.execute(self._sql.insert_event, **_event_row(event))
            ids.append(event.internal_id)
            if event.name in cancelling:
                self._cancel_listening(tx, event, routing, now)
            for run in routing.runs_for(event, functions):
                woke |= self._insert_run(tx, run, now, routing, quiet_conflict=True)
                cancelling.update(listener.event_name for listener in run.flow.cancel_on)
            if event.name in waited:
                woke |= self._resume_waits(tx, event, routing, now)
        return ids, woke

    def _waited_names(self, tx: RawTransaction, names: Sequence[str]) -> set[str]:
        """The names among `names` that some run waits for."""
        return set(tx.scalars(self._sql.waited_names, names=sorted(names))) if names else set()

    def _claim_event_id(self, tx: RawTransaction, event: EventRecord, now: datetime) -> str | None:
        """Hold the sender's event id for 24 h; return the holder's internal id if taken."""
        if event.id == event.internal_id:
            return None
        row = tx.first(self._sql.event_id_holder, key=event.id)
        expires = (now + EVENT_ID_TTL).timestamp()
        if row is None:
            tx.execute(
                self._sql.insert_event_id,
                id=event.id,
                internal_id=event.internal_id,
                expires_at=expires,
            )
            return None
        if row["expires_at"] > now.timestamp():
            return str(row["internal_id"])
        tx.execute(
            self._sql.take_event_id,
            key=event.id,
            internal_id=event.internal_id,
            expires_at=expires,
        )
        return None

    def _insert_run(
        self,
        tx: RawTransaction,
        run: NewRun,
        now: datetime,
        routing: EventRouting,
        *,
        quiet_conflict: bool = False,
    ) -> bool:
        """Admit and store a run; True if it made work available.

        A run with an idempotency key (a cron tick) that exists already is refused with
        `Conflict`, or ignored with `quiet_conflict`; its flow control is undone with it.
        """
        if run.idempotency_key is None:
            return self._admit(tx, run, now, routing)
        try:
            with self._savepoint(tx):
                return self._admit(tx, run, now, routing)
        except self._integrity_error:
            if quiet_conflict:
                return False
            raise errors.Conflict(
                f"function {run.function_id!r} already has a run with key {run.idempotency_key!r}"
            ) from None

    @contextmanager
    def _savepoint(self, tx: RawTransaction) -> Iterator[None]:
        """Undo only the block's writes if it fails (a duplicate key must not end the batch)."""
        tx.execute(self._sql.savepoint)
        try:
            yield
        except BaseException:
            tx.execute(self._sql.rollback_to_savepoint)
            raise
        tx.execute(self._sql.release_savepoint)

    def _resume_waits(
        self, tx: RawTransaction, event: EventRecord, routing: EventRouting, now: datetime
    ) -> bool:
        stamp = now.timestamp()
        resumed = False
        for row in tx.rows(self._sql.waits_for, name=event.name, now=stamp):
            wait = WaitRecord.from_row(row)
            trigger = self._event_by_internal_id(tx, row["event_id"])
            if routing.wait_matches(wait, event, trigger):
                resumed |= self._resume(tx, wait, event, stamp)
        return resumed

    def _resume(self, tx: RawTransaction, wait: WaitRecord, event: EventRecord, at: float) -> bool:
        """Resolve the wait with `event` and make its run due; False if it was resolved already.

        The run's queue row is locked first, as a worker holding the run does before touching
        its wait or steps (the other order deadlocked with a worker committing the wait's
        timeout: PostgreSQL aborted one of the two).
        """
        sql = self._sql
        tx.first(sql.lock_queue_item, run_id=wait.run_id)
        if tx.execute(sql.delete_wait, run_id=wait.run_id, step_hash=wait.step_hash) != 1:
            return False  # timed out, or resumed by another event, meanwhile
        tx.execute(
            sql.resolve_wait_step,
            run_id=wait.run_id,
            step_hash=wait.step_hash,
            status="completed",
            output=json.dumps(event.payload()),
            ended_at=at,
        )
        tx.execute(sql.make_due, run_id=wait.run_id, available_at=at)
        return True

    def _event_by_internal_id(
        self, tx: RawTransaction, internal_id: str | None
    ) -> EventRecord | None:
        if internal_id is None:
            return None
        row = tx.first(self._sql.event, internal_id=internal_id)
        return None if row is None else EventRecord.from_row(row)

    def create_run(
        self,
        run: NewRun,
        events: Sequence[EventRecord],
        now: datetime,
        routing: EventRouting,
        *,
        steps: Sequence[StepRecord] = (),
        logs: Sequence[LogRecord] = (),
    ) -> str:
        """Store `events` and create one run, starting with `steps` and `logs` (a rerun's).

        Raises `Conflict` on a repeated idempotency key, or when flow control refuses a run
        that must not be skipped silently ("Run now"), with the run in the way as `run_id`.
        """
        with self._transaction() as tx:
            for event in events:
                tx.execute(self._sql.insert_event, **_event_row(event))
            self._insert_run(tx, run, now, routing)
            for step in steps:
                tx.execute(self._sql.insert_step, **_step_row(step))
                self._refer_to_blob(tx, run.id, step.output)
            if logs:
                tx.execute_many(self._sql.insert_log, [_log_row(log) for log in logs])
            self._announce(tx)
        self._wake()
        return run.id

    def create_runs(
        self, runs: Sequence[NewRun], now: datetime, routing: EventRouting
    ) -> list[str]:
        """Create several runs in one transaction (all or none); returns their ids."""
        if not runs:
            return []
        with self._transaction() as tx:
            for run in runs:
                self._insert_run(tx, run, now, routing)
            self._announce(tx)
        self._wake()
        return [run.id for run in runs]

    def fire_cron_tick(
        self,
        function_id: str,
        schedule: str,
        tick: datetime,
        run: NewRun | None,
        now: datetime,
        *,
        events: Sequence[EventRecord] = (),
        missed: int = 0,
        routing: EventRouting | None = None,
    ) -> bool:
        """Advance a schedule to `tick` and create its run; False if another scheduler did.

        A paused function's tick is recorded without its run or events: skipped, not postponed.
        `missed` ticks before it were never run; they are added to the schedule's count.
        """
        sql = self._sql
        try:
            with self._transaction() as tx:
                if any(tx.scalars(sql.function_paused, fn=function_id)):
                    run, events = None, ()
                last = tx.scalars(sql.last_tick, fn=function_id, sched=schedule)
                if last and last[0] >= tick.timestamp():
                    return False
                if last:
                    tx.execute(
                        sql.set_tick,
                        fn=function_id,
                        sched=schedule,
                        last_tick=tick.timestamp(),
                        missed=missed,
                    )
                else:
                    tx.execute(
                        sql.insert_tick,
                        function_id=function_id,
                        schedule=schedule,
                        last_tick=tick.timestamp(),
                        missed_total=missed,
                    )
                for event in events:
                    tx.execute(sql.insert_event, **_event_row(event))
                if run is not None:
                    if routing is None:
                        raise ValueError("routing is required to start a run")
                    self._insert_run(tx, run, now, routing)
                    self._announce(tx)
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

    def cron_states(self) -> dict[tuple[str, str], CronState]:
        """Every schedule's last tick and missed-tick count, by (function id, schedule)."""
        with self._read() as conn:
            rows = conn.execute(select(t.cron_state)).mappings().all()
        return {(row["function_id"], row["schedule"]): CronState.from_row(row) for row in rows}

    # -- the queue ---------------------------------------------------------------------------

    def claim_runs(
        self,
        owner: str,
        limit: int,
        now: datetime,
        lease_seconds: float,
        function_ids: Sequence[str],
        executing: Sequence[str] = (),
    ) -> list[ClaimedRun]:
        """Lease up to `limit` due runs of `function_ids` and load what replaying them needs.

        Expired leases of `executing` (the claimer's runs in flight) are left alone.
        """
        if limit <= 0 or not function_ids:
            return []
        stamp = now.timestamp()
        lease = {
            "owner": owner,
            "until": stamp + lease_seconds,
            "now": stamp,
            "function_ids": list(function_ids),
        }

        def claim(tx: RawTransaction) -> list[ClaimedRun]:
            # Expired leases first: their runs were due before anything still unclaimed.
            claimed = self._take_over_expired(tx, limit, lease, set(executing))
            if len(claimed) < limit:
                claimed += self._claim_ready(tx, limit - len(claimed), lease)
            if not claimed:
                return []
            run_ids = [row["run_id"] for row in claimed]
            rows = tx.rows(self._sql.start_runs, run_ids=run_ids, now=stamp)
            # The queue keeps a copy of the deadline, so timeouts are found without a join;
            # it replaces the deadline to start, if there was one.
            tx.execute_many(
                self._sql.queue_timeout,
                [
                    {"run_id": r["id"], "at": r["timeout_at"]}
                    for r in rows
                    if r["timeout_at"] or r["start_by"]
                ],
            )
            runs = [RunRecord.from_row(row) for row in rows]
            keyed = {row["run_id"] for row in claimed if is_keyed(row)}
            with_steps = {row["id"] for row in rows if row["has_steps"]}
            return self._load_claimed(tx, runs, owner, lease_seconds, keyed, with_steps)

        return self._group.run(claim)

    def _take_over_expired(
        self, tx: RawTransaction, limit: int, lease: dict[str, Any], executing: set[str]
    ) -> list[Row]:
        """Lease runs whose holder stopped renewing; each run's log says who lost it, and when.

        Looked for only once a lease can have expired: the earliest expiry seen at the last
        look, and never later than a lease taken since then would expire (`lease_seconds`).
        """
        now, owner = lease["now"], lease["owner"]
        if now < self._no_expiry_before:
            return []
        found = tx.rows(self._sql.expired_leases, limit=limit, **lease)
        expired = [r for r in found if not (r["lease_owner"] == owner and r["run_id"] in executing)]
        if len(found) < limit and len(expired) == len(found):
            # Every expired lease is taken now: look again when the next one expires.
            [earliest] = tx.scalars(self._sql.earliest_lease_expiry, now=now)
            taken_now = lease["until"]  # when a lease taken now would expire
            self._no_expiry_before = min(earliest or taken_now, taken_now)
        if not expired:
            return []
        run_ids = [row["run_id"] for row in expired]
        claimed = tx.rows(self._sql.take_over, run_ids=run_ids, **lease)
        taken = {row["run_id"] for row in claimed}
        at = datetime.fromtimestamp(now, UTC)
        logs = [
            reclaim_log(row["run_id"], row["lease_owner"], _expiry(row), owner, at)
            for row in expired
            if row["run_id"] in taken
        ]
        tx.execute_many(self._sql.insert_log, [_log_row(log) for log in logs])
        return claimed

    def _load_claimed(
        self,
        tx: RawTransaction,
        runs: list[RunRecord],
        owner: str,
        lease_seconds: float,
        keyed: set[str],
        with_steps: set[str],
    ) -> list[ClaimedRun]:
        run_ids = [run.id for run in runs]
        event_ids = sorted({e for run in runs for e in run.event_ids})
        events = {
            row["internal_id"]: EventRecord.from_row(row)
            for row in (tx.rows(self._sql.events, internal_ids=event_ids) if event_ids else ())
        }
        # A parallel branch replays its parent's function, over its parent's steps.
        sources = {
            run.id: run.parent_run_id
            if run.trigger_kind == "parallel" and run.parent_run_id
            else run.id
            for run in runs
        }
        steps: dict[str, list[StepRecord]] = {source: [] for source in sources.values()}
        # Steps are read for the runs that have some, and for branches (their parent's).
        loaded = sorted(
            source for run_id, source in sources.items() if source != run_id or run_id in with_steps
        )
        for row in tx.rows(self._sql.steps_of_runs, run_ids=loaded) if loaded else ():
            steps[row["run_id"]].append(StepRecord.from_row(row))
        failures: dict[str, dict[str, int]] = {run_id: {} for run_id in run_ids}
        failed = [run.id for run in runs if run.failures]
        if failed:
            for row in tx.rows(self._sql.failures_of_runs, run_ids=failed):
                failures[row["run_id"]][row["step_hash"]] = row["n"]
        origins = self._origins(tx, runs)
        return [
            ClaimedRun(
                run=run,
                lease=Lease(
                    run_id=run.id,
                    owner=owner,
                    seconds=lease_seconds,
                    parent_run_id=run.parent_run_id,
                    keyed=run.id in keyed,
                ),
                events=tuple(events[e] for e in run.event_ids if e in events),
                steps=tuple(steps[sources[run.id]]),
                step_failures=failures[run.id],
                origin=origins[run.id],
            )
            for run in runs
        ]

    def _origins(
        self, tx: RawTransaction, runs: list[RunRecord]
    ) -> dict[str, tuple[TriggerKind, str | None]]:
        """Per run, (trigger_kind, trigger_by) as its function sees them (`ClaimedRun.origin`).

        A parallel branch's are its parent run's, read here in one statement for all of them.
        """
        origins = {run.id: (run.trigger_kind, run.trigger_by) for run in runs}
        parents = {
            run.id: run.parent_run_id
            for run in runs
            if run.trigger_kind == "parallel" and run.parent_run_id
        }
        if parents:
            rows = tx.rows(self._sql.run_origins, run_ids=sorted(set(parents.values())))
            found = {row["id"]: (row["trigger_kind"], row["trigger_by"]) for row in rows}
            for run_id, parent_id in parents.items():
                if parent_id in found:
                    origins[run_id] = found[parent_id]
        return origins

    def next_due_at(self, function_ids: Sequence[str] | None = None) -> datetime | None:
        """When the earliest unleased item, lease expiry or run timeout falls due.

        With `function_ids`, only queue items of those functions count.
        """
        q = t.queue.c
        with self._read() as conn:
            # Items of a full concurrency key are not due: a slot freed wakes the workers.
            full = full_keys_read(conn)
            waiting = and_(
                q.lease_owner.is_(None),
                or_(q.slot_key_1.is_(None), q.slot_key_1.not_in(full)),
                or_(q.slot_key_2.is_(None), q.slot_key_2.not_in(full)),
            )
            query = select(
                func.min(q.available_at).filter(waiting),
                func.min(q.lease_expires_at),
                func.min(q.timeout_at),
            )
            if function_ids is not None:
                query = query.where(q.function_id.in_(function_ids))
            row = conn.execute(query).one()
        times = [v for v in row if v is not None]
        return from_epoch(min(times)) if times else None

    def slot_waits(self, run_ids: Sequence[str], now: datetime) -> dict[str, str]:
        """Per run among `run_ids` that is due but held back by a full concurrency key: the key."""
        if not run_ids:
            return {}
        q = t.queue.c
        with self._read() as conn:
            full = set(full_keys_read(conn))
            if not full:
                return {}
            rows = conn.execute(
                select(q.run_id, q.slot_key_1, q.slot_key_2).where(
                    q.run_id.in_(list(run_ids)),
                    q.lease_owner.is_(None),
                    q.available_at <= now.timestamp(),
                )
            ).all()
        waits = {}
        for run_id, *keys in rows:
            blocking = [key for key in keys if key in full]
            if blocking:
                waits[run_id] = blocking[0]
        return waits

    def extend_leases(
        self,
        owner: str,
        run_ids: Sequence[str],
        until: datetime,
        steps: Mapping[str, tuple[str, datetime]] | None = None,
    ) -> set[str]:
        """Extend leases and note the steps in flight; returns the ids no longer held."""
        if not run_ids:
            return set()

        def extend(tx: RawTransaction) -> list[str]:
            held = tx.scalars(
                self._sql.extend_leases,
                run_ids=list(run_ids),
                owner=owner,
                until=until.timestamp(),
            )
            if steps:
                tx.execute_many(
                    self._sql.note_step,
                    [
                        {"run_id": r, "owner": owner, "step_id": s, "started_at": at.timestamp()}
                        for r, (s, at) in steps.items()
                    ],
                )
            return held

        return set(run_ids) - set(self._group.run(extend))

    def step_in_flight(self, run_id: str) -> tuple[str, datetime] | None:
        """The step a leased run is executing and since when, as its worker last said."""
        with self._transaction() as tx:
            row = tx.first(self._sql.step_in_flight, run_id=run_id)
        if row is None:
            return None
        return row["step_id"], datetime.fromtimestamp(row["step_started_at"], UTC)

    def _hold(self, tx: RawTransaction, lease: Lease, now: datetime) -> None:
        """Renew the lease, or raise LeaseLost: the check every lease-taking write starts with."""
        until = now.timestamp() + lease.seconds
        if tx.execute(self._sql.hold, run_id=lease.run_id, owner=lease.owner, until=until) != 1:
            raise errors.LeaseLost(f"run {lease.run_id} is no longer leased by {lease.owner}")

    def _apply_delta(self, tx: RawTransaction, run_id: str, delta: RunDelta, now: datetime) -> None:
        if not delta:
            return
        sql = self._sql
        if delta.progress is not None:
            done, total, message = delta.progress
            tx.execute(
                sql.set_progress,
                run_id=run_id,
                progress_done=done,
                progress_total=total,
                progress_message=message,
                progress_at=now.timestamp(),
            )
        if delta.saved_before_step is not None:
            tx.execute(
                sql.set_saved_before_step,
                run_id=run_id,
                saved_before_step=delta.saved_before_step,
            )
        if delta.counters:
            [stored] = tx.scalars(sql.counters, run_id=run_id)
            counters = json.loads(stored or "{}")
            for name, n in delta.counters.items():
                counters[name] = counters.get(name, 0) + n
            tx.execute(sql.set_counters, run_id=run_id, counters=json.dumps(counters))
        tx.execute_many(sql.insert_log, [_log_row(log) for log in delta.logs])

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
        if events and routing is None:
            raise ValueError("routing is required to send events")

        def commit(tx: RawTransaction) -> bool:
            if consume_wait:
                self._hold(tx, lease, now)
                gone = tx.execute(self._sql.delete_wait, run_id=lease.run_id, step_hash=step.hash)
                if gone != 1:
                    raise errors.Conflict(f"wait {step.id!r} was already resolved by an event")
                self._save_step(tx, step)
            else:  # the lease is checked by the write, and renewed by the heartbeat alone
                self._save_held_step(tx, step, lease)
            if attempt is not None:
                self._insert_attempt(tx, lease.run_id, attempt, now)
                tx.execute(self._sql.add_failure, run_id=lease.run_id, failed=1)
            self._apply_delta(tx, lease.run_id, delta, now)
            woke = False
            if events and routing is not None:
                _, woke = self._ingest(tx, events, routing, now)
                if woke:
                    self._announce(tx)
            return woke

        if self._group.run(commit):
            self._wake()

    def _save_step(self, tx: RawTransaction, step: StepRecord) -> None:
        """Insert the step, or complete the sleep, wait or invoke it was parked on.

        A step settled meanwhile (an invoke whose run ended first) exists already: inserting
        it raises `Conflict`.
        """
        row = _step_row(step)
        self._refer_to_blob(tx, step.run_id, step.output)
        if _settles(step) and tx.execute(self._sql.settle_step, **row) == 1:
            return
        tx.execute(self._sql.insert_step, **row)

    def _save_held_step(self, tx: RawTransaction, step: StepRecord, lease: Lease) -> None:
        """`_save_step` if `lease` is still held; raise `LeaseLost` if not.

        Each write checks the lease itself: a parked step is settled if it is parked and the
        lease held, else inserted if the lease is held (`Conflict` if it exists).
        """
        self._refer_to_blob(tx, step.run_id, step.output)
        row = _step_row(step) | {"lease_run_id": lease.run_id, "owner": lease.owner}
        if _settles(step) and tx.execute(self._sql.settle_held_step, **row) == 1:
            return
        if tx.execute(self._sql.insert_held_step, **row) != 1:
            raise errors.LeaseLost(f"run {lease.run_id} is no longer leased by {lease.owner}")

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
        waits: Sequence[NewWait] = (),
        children: Sequence[StepRecord] = (),
        runs: Sequence[NewRun] = (),
        events: Sequence[EventRecord] = (),
        routing: EventRouting | None = None,
    ) -> None:
        """Release a run until `available_at`, recording why (sleep, wait or failed attempt).

        `runs` (with their `events`) are started in the same transaction: an invoked run, or
        the branches of a `step.parallel`, whose steps wait in `children`. An SDK app's run
        may wait on several steps at once: more `waits`, and `children` without runs.
        """
        sql = self._sql
        if runs and routing is None:
            raise ValueError("routing is required to start runs")

        def park(tx: RawTransaction) -> None:
            released = tx.execute(
                sql.release, run_id=lease.run_id, owner=lease.owner, at=available_at.timestamp()
            )
            if released != 1:
                raise errors.LeaseLost(f"run {lease.run_id} is no longer leased by {lease.owner}")
            if lease.keyed:
                self._announce(tx)  # a concurrency slot is free: other workers may claim
            next_attempt = None
            if attempt is not None:
                self._insert_attempt(tx, lease.run_id, attempt, now)
                if not attempt.step_hash:
                    next_attempt = attempt.attempt + 1
            tx.execute(
                sql.park,
                run_id=lease.run_id,
                detail=detail,
                failed=int(attempt is not None),
                next_attempt=next_attempt,
                saved_before_step=delta.saved_before_step,
            )
            if step is not None:
                self._save_step(tx, step)
            for new_wait in (wait, *waits) if wait is not None else waits:
                tx.execute(
                    sql.insert_wait,
                    run_id=lease.run_id,
                    step_hash=new_wait.step_hash,
                    event_name=new_wait.event_name,
                    expression=new_wait.expression,
                    created_at=now.timestamp(),
                    expires_at=new_wait.expires_at.timestamp(),
                )
            self._apply_delta(tx, lease.run_id, replace(delta, saved_before_step=None), now)
            if (runs or children) and routing is not None:
                self._start_children(tx, children, runs, events, routing, now)

        self._group.run(park)
        if runs:
            self._wake()

    def _start_children(
        self,
        tx: RawTransaction,
        children: Sequence[StepRecord],
        runs: Sequence[NewRun],
        events: Sequence[EventRecord],
        routing: EventRouting,
        now: datetime,
    ) -> None:
        """Start a parked run's invoked run or parallel branches, and their waiting steps."""
        for child in children:
            tx.execute(self._sql.insert_step, **_step_row(child))
        for event in events:
            tx.execute(self._sql.insert_event, **_event_row(event))
        for run in runs:
            self._insert_run(tx, run, now, routing)
        if runs:
            self._announce(tx)

    def _insert_attempt(
        self, tx: RawTransaction, run_id: str, attempt: NewAttempt, now: datetime
    ) -> None:
        tx.execute(
            self._sql.insert_attempt,
            run_id=run_id,
            step_hash=attempt.step_hash,
            step_id=attempt.step_id,
            attempt=attempt.attempt,
            error=attempt.error,
            started_at=attempt.started_at.timestamp(),
            ended_at=now.timestamp(),
            retry_at=None if attempt.retry_at is None else attempt.retry_at.timestamp(),
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
        routing: EventRouting,
    ) -> None:
        """End a run: COMPLETED with output, or FAILED with error; removes its queue item.

        What follows from the end (lifecycle events, the parent's step) is in the same
        transaction (`endings`).
        """
        sql = self._sql

        def finish(tx: RawTransaction) -> None:
            if lease.parent_run_id is not None:  # the parent's queue row first (lock order)
                tx.first(sql.lock_queue_item, run_id=lease.parent_run_id)
            if tx.execute(sql.drop_queue_item, run_id=lease.run_id, owner=lease.owner) != 1:
                raise errors.LeaseLost(f"run {lease.run_id} is no longer leased by {lease.owner}")
            if lease.keyed:
                self._announce(tx)  # a concurrency slot is free: other workers may claim
            if attempt is not None:
                self._insert_attempt(tx, lease.run_id, attempt, now)
            ended = tx.rows(
                sql.finish,
                run_id=lease.run_id,
                status=status,
                detail=None,
                output=output,
                error=error,
                ended_at=now.timestamp(),
                failed=int(attempt is not None),
            )
            [checks] = ended
            if checks["has_waits"]:  # (an SDK app's run can end with waits still open)
                tx.execute(sql.delete_waits, run_id=lease.run_id)
            self._refer_to_blob(tx, lease.run_id, output)
            self._apply_delta(tx, lease.run_id, delta, now)
            listened = bool(checks["finished_waited"]) or self._triggers_on(
                tx, checks["registry_version"], FINISHED_EVENT, routing
            )
            # Most runs end with nothing to follow: no parent, no event listened for.
            if listened or status != "COMPLETED" or lease.parent_run_id is not None:
                [row] = tx.rows(sql.run, run_id=lease.run_id)
                end = RunEnd.from_row(row)
                self._after_end(tx, end, now, routing, finished_listened=listened)

        self._group.run(finish)

    def save_progress(self, lease: Lease, delta: RunDelta, now: datetime) -> None:
        """Save progress and log lines between commits; silently skipped if the lease is gone."""
        with self._transaction() as tx:
            if tx.first(self._sql.holds, run_id=lease.run_id, owner=lease.owner) is not None:
                self._apply_delta(tx, lease.run_id, delta, now)

    def release_runs(self, owner: str, run_ids: Sequence[str], now: datetime) -> int:
        """Give leased runs back to the queue, due now (a worker shutting down)."""
        if not run_ids:
            return 0
        q = t.queue.c
        with self._write() as conn:
            done = conn.execute(
                update(t.queue)
                .where(q.run_id.in_(run_ids), q.lease_owner == owner)
                .values(lease_owner=None, lease_expires_at=None, available_at=now.timestamp())
            )
        if done.rowcount:
            self._wake()
        return int(done.rowcount)

    # -- workers -------------------------------------------------------------------------------

    def register_worker(self, worker: WorkerRecord) -> None:
        """Record a worker (replacing a record with its id); forgets long-dead workers."""
        w = t.workers.c
        forget_before = worker.heartbeat_at.timestamp() - FORGET_WORKERS_SECONDS
        with self._write() as conn:
            conn.execute(delete(t.workers).where(w.heartbeat_at < forget_before))
            conn.execute(delete(t.workers).where(w.id == worker.id))
            conn.execute(
                insert(t.workers).values(
                    id=worker.id,
                    hostname=worker.hostname,
                    pid=worker.pid,
                    slots=worker.slots,
                    inflight=worker.inflight,
                    functions=json.dumps(list(worker.functions)),
                    started_at=worker.started_at.timestamp(),
                    heartbeat_at=worker.heartbeat_at.timestamp(),
                    heartbeat_seconds=worker.heartbeat_seconds,
                    stopping=worker.stopping,
                    abandoned=worker.abandoned,
                )
            )

    def heartbeat_worker(
        self,
        worker_id: str,
        now: datetime,
        inflight: int,
        *,
        stopping: bool = False,
        abandoned: int = 0,
    ) -> None:
        """Record that a worker's claim loop is alive, with its load and abandoned slots."""
        with self._write() as conn:
            conn.execute(
                update(t.workers)
                .where(t.workers.c.id == worker_id)
                .values(
                    heartbeat_at=now.timestamp(),
                    inflight=inflight,
                    stopping=stopping,
                    abandoned=abandoned,
                )
            )

    def deregister_worker(self, worker_id: str) -> None:
        """Forget a worker that stopped."""
        with self._write() as conn:
            conn.execute(delete(t.workers).where(t.workers.c.id == worker_id))

    def list_workers(self) -> list[WorkerRecord]:
        """Registered workers, most recent heartbeat first."""
        with self._read() as conn:
            rows = conn.execute(
                select(t.workers).order_by(t.workers.c.heartbeat_at.desc())
            ).mappings()
            return [WorkerRecord.from_row(row) for row in rows]

    def cancel_run(
        self,
        run_id: str,
        now: datetime,
        routing: EventRouting,
        *,
        by: str | None = None,
        reason: str | None = None,
    ) -> RunRecord:
        """Cancel a queued, running, sleeping or waiting run; a no-op on an ended run."""
        with self._transaction() as tx:
            self._cancel_requested(tx, run_id, now, routing, by, reason)
            row = tx.first(self._sql.run, run_id=run_id)
        if row is None:
            raise errors.NotFound(f"no run with id {run_id!r}")
        return RunRecord.from_row(row)

    def cancel_runs(
        self,
        run_ids: Sequence[str],
        now: datetime,
        routing: EventRouting,
        *,
        by: str | None = None,
        reason: str | None = None,
    ) -> int:
        """Cancel every active run among `run_ids` in one transaction; returns how many."""
        with self._transaction() as tx:
            return sum(
                self._cancel_requested(tx, run_id, now, routing, by, reason) for run_id in run_ids
            )

    def _cancel_requested(
        self,
        tx: RawTransaction,
        run_id: str,
        now: datetime,
        routing: EventRouting,
        by: str | None,
        reason: str | None,
    ) -> bool:
        """End an active run as cancelled by request, recording who asked and why."""
        return self._end_run(
            tx,
            run_id,
            "CANCELLED",
            now,
            routing,
            reason="cancelled by request",
            requested_by=by,
            request_reason=reason,
        )

    def fail_timed_out_runs(self, now: datetime, routing: EventRouting) -> list[str]:
        """End every active run past a deadline; returns their ids.

        A run that never started by its `start_by` is CANCELLED; a started run past its
        timeout is FAILED with a `RunTimeout` error.
        """
        with self._transaction() as tx:
            rows = tx.rows(self._sql.timed_out, now=now.timestamp())
            for row in rows:
                if row["started_at"] is None:
                    waited = row["start_by"] - row["created_at"]
                    reason = f"did not start within {waited:g}s (timeouts.start)"
                    self._end_run(tx, row["id"], "CANCELLED", now, routing, reason=reason)
                    continue
                error = json.dumps(
                    {
                        "name": TIMEOUT_ERROR,
                        "message": f"run exceeded its timeout of {row['timeout_seconds']:g}s",
                        "traceback": "",
                    }
                )
                self._end_run(tx, row["id"], "FAILED", now, routing, error=error)
        return [row["id"] for row in rows]

    def sweep(self, now: datetime) -> None:
        """Forget flow-control state that can no longer matter (expired buckets, listeners)."""
        with self._transaction() as tx:
            self._admission.sweep(tx, now.timestamp())
            tx.execute(self._cancellation.sweep, now=now.timestamp())

    # -- reading -----------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord:
        """One run; raises `NotFound`."""
        with self._read() as conn:
            row = conn.execute(select(t.runs).where(t.runs.c.id == run_id)).mappings().first()
        if row is None:
            raise errors.NotFound(f"no run with id {run_id!r}")
        return RunRecord.from_row(row)

    def list_runs(self, run_filter: RunFilter) -> list[RunRecord]:
        """Runs matching the filter, newest first; `NotFound` for an unknown cursor."""
        with self._read() as conn:
            query = select(t.runs).where(*self._run_conditions(conn, run_filter))
            query = _newest_first(query, run_filter.limit)
            return [RunRecord.from_row(m) for m in conn.execute(query).mappings()]

    def list_run_ids(self, run_filter: RunFilter, *, active_only: bool = False) -> list[str]:
        """The ids `list_runs` would return (only QUEUED and RUNNING runs if `active_only`)."""
        r = t.runs.c
        with self._read() as conn:
            query = select(r.id).where(*self._run_conditions(conn, run_filter))
            if active_only:
                query = query.where(r.status.in_(ACTIVE_STATUSES))
            return list(conn.execute(_newest_first(query, run_filter.limit)).scalars())

    def _run_conditions(self, conn: Connection, run_filter: RunFilter) -> list[Any]:
        """The WHERE clauses of a run filter, its cursor resolved to a (created_at, id) key."""
        r, e = t.runs.c, t.events.c
        equal = (
            (r.function_id, run_filter.function_id),
            (r.status, run_filter.status),
            (r.trigger_kind, run_filter.trigger_kind),
            (r.parent_run_id, run_filter.parent_run_id),
            (r.dry_run, run_filter.dry_run),
            (_error_name(conn.dialect.name), run_filter.error_name),
        )
        where: list[Any] = [column == value for column, value in equal if value is not None]
        if run_filter.run_ids is not None:
            where.append(r.id.in_(run_filter.run_ids))
        if run_filter.event_id is not None:
            event = self._find_event(conn, run_filter.event_id)
            event_id = event.internal_id if event else run_filter.event_id
            members = select(t.batch_members.c.run_id).where(t.batch_members.c.event_id == event_id)
            where.append(or_(r.event_id == event_id, r.id.in_(members)))
        if run_filter.created_after is not None:
            where.append(r.created_at >= run_filter.created_after.timestamp())
        if run_filter.created_before is not None:
            where.append(r.created_at < run_filter.created_before.timestamp())
        if run_filter.q:
            # No index can serve a substring test: each candidate run left by the conditions
            # above costs one primary-key probe of its event and a scan of that event's data.
            needles = {run_filter.q, json.dumps(run_filter.q)[1:-1]}  # as typed, as stored
            contains = [e.data.icontains(needle, autoescape=True) for needle in needles]
            where.append(
                select(e.internal_id).where(e.internal_id == r.event_id, or_(*contains)).exists()
            )
        if run_filter.before is not None:
            cursor = conn.execute(select(r.created_at).where(r.id == run_filter.before)).scalar()
            if cursor is None:
                raise errors.NotFound(f"before: no run {run_filter.before!r} to page from")
            # The first clause gives the planner an index range (an OR alone gives none; deep
            # pages scanned 400k rows); the row comparison is the exact keyset condition.
            where.append(r.created_at <= cursor)
            where.append(tuple_(r.created_at, r.id) < tuple_(cursor, run_filter.before))
        return where

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

    @staticmethod
    def _find_event(conn: Connection, event_id: str) -> EventRecord | None:
        """An event by internal id, else the newest with that sender's id, on `conn`."""
        e = t.events.c
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

    def get_events(self, internal_ids: Sequence[str]) -> list[EventRecord]:
        """Events by internal id, in the order given (unknown ids are left out)."""
        if not internal_ids:
            return []
        with self._transaction() as tx:
            return self._events_by_id(tx, internal_ids)

    def get_event(self, internal_id: str) -> EventRecord:
        """One event by its internal id (or the sender's id); raises `NotFound`."""
        with self._read() as conn:
            event = self._find_event(conn, internal_id)
        if event is None:
            raise errors.NotFound(f"no event with id {internal_id!r}")
        return event

    def list_events(
        self,
        name: str | None,
        limit: int,
        before: str | None,
        *,
        received_after: datetime | None = None,
        received_before: datetime | None = None,
        name_prefix: str | None = None,
    ) -> list[EventRecord]:
        """Events, newest first, paged by `before`; the window is `[after, before)`."""
        e = t.events.c
        query = select(t.events).order_by(e.internal_id.desc()).limit(limit)
        if name is not None:
            query = query.where(e.name == name)
        if name_prefix:
            # substr, not LIKE: SQLite's LIKE ignores case and both would need `%`/`_` escaped.
            query = query.where(func.substr(e.name, 1, len(name_prefix)) == name_prefix)
        if before is not None:
            query = query.where(e.internal_id < before)
        if received_after is not None:
            query = query.where(e.received_at >= received_after.timestamp())
        if received_before is not None:
            query = query.where(e.received_at < received_before.timestamp())
        with self._read() as conn:
            return [EventRecord.from_row(m) for m in conn.execute(query).mappings()]


def _record_python_app(
    conn: Connection, app_id: str, functions: Sequence[FunctionRecord], now: datetime
) -> None:
    """Record the app; refuse an id, or function ids, that an SDK app holds."""
    a, f = t.apps.c, t.functions.c
    sdk_apps = select(a.id).where(a.kind == "sdk")
    taken = conn.execute(
        select(f.id, f.app_id).where(
            f.id.in_([fn.id for fn in functions]), f.app_id.in_(sdk_apps), f.app_id != app_id
        )
    ).first()
    if taken is not None:
        raise errors.Conflict(
            f"function id {taken.id!r} belongs to SDK app {taken.app_id!r}; "
            "function ids must be unique across apps"
        )
    kind = conn.execute(select(a.kind).where(a.id == app_id)).scalar()
    if kind == "sdk":
        raise errors.Conflict(f"app id {app_id!r} belongs to an SDK app")
    row = {"id": app_id, "kind": "python", "synced_at": now.timestamp()}
    if kind is None:
        try:
            with conn.begin_nested():
                conn.execute(insert(t.apps), row)
            return
        except IntegrityError:  # another worker of the app recorded it a moment ago
            pass
    conn.execute(update(t.apps).where(a.id == app_id).values(synced_at=now.timestamp()))


def _error_name(dialect: str) -> Any:
    """The `name` of a run's stored error (JSON text: ours, or an SDK app's error body).

    PostgreSQL reads text as JSON only after a cast; SQLite's JSON functions read text as is
    (its CAST would apply numeric affinity).
    """
    error = t.runs.c.error
    as_json = cast(error, JSON) if dialect == "postgresql" else type_coerce(error, JSON)
    return as_json["name"].as_string()


def _settles(step: StepRecord) -> bool:
    """Whether saving `step` may complete one parked before (a new parked step is inserted)."""
    return step.kind in _SETTLED_KINDS and step.status not in _PARKED_STATUSES


def _bump_registry_version(conn: Connection) -> None:
    """Tell every process's routing that the registry changed (first: it orders the changes)."""
    v = t.registry_version.c
    conn.execute(
        update(t.registry_version).where(v.id == REGISTRY_ROW).values(version=v.version + 1)
    )


def _newest_first(query: Select[Any], limit: int) -> Select[Any]:
    r = t.runs.c
    return query.order_by(r.created_at.desc(), r.id.desc()).limit(limit)


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
        "sent_by": event.sent_by,
    }


def _expiry(row: Row) -> datetime:
    """When a queue row's lease expired (it is set on every leased row)."""
    expired = from_epoch(row["lease_expires_at"])
    assert expired is not None
    return expired


def _log_row(log: LogRecord) -> dict[str, Any]:
    return {
        "run_id": log.run_id,
        "ts": log.ts.timestamp(),
        "level": log.level,
        "message": log.message,
        "step_id": log.step_id,
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

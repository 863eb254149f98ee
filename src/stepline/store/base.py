"""The Store protocol and the frozen records that cross it; the engine never sees a Row."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from stepline._durations import format_duration
from stepline.store.access import AccessStore
from stepline.store.blobs import BlobStore
from stepline.store.pruning import RetentionStore
from stepline.store.tally import StoreTally

RunStatus = Literal["QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "SKIPPED"]
ACTIVE_STATUSES: tuple[RunStatus, ...] = ("QUEUED", "RUNNING")
END_STATUSES: tuple[RunStatus, ...] = ("COMPLETED", "FAILED", "CANCELLED", "SKIPPED")
TriggerKind = Literal["event", "cron", "manual", "invoke", "replay", "rerun", "parallel"]
StepKind = Literal["run", "sleep", "wait", "send_event", "invoke", "parallel", "branch"]
StepStatus = Literal["completed", "failed", "sleeping", "waiting"]
FAILED_EVENT = "stepline/function.failed"
FINISHED_EVENT = "stepline/function.finished"
CANCELLED_EVENT = "stepline/function.cancelled"


def to_epoch(value: datetime) -> float:
    """Aware datetime → epoch seconds, the stored form."""
    return value.timestamp()


def from_epoch(value: float | None) -> datetime | None:
    """Stored epoch seconds → aware UTC datetime (None stays None)."""
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _at(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True, kw_only=True, slots=True)
class FunctionRecord:
    """A registered function: its id, app, name and JSON config (triggers and options).

    A paused function has the pause's record: since when, who paused it and why (all optional).
    """

    id: str
    app_id: str
    name: str
    config: str
    paused: bool = False
    paused_at: datetime | None = None
    paused_by: str | None = None
    pause_reason: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> FunctionRecord:
        """Build from a database row."""
        return cls(
            id=row["id"],
            app_id=row["app_id"],
            name=row["name"],
            config=row["config"],
            paused=bool(row["paused"]),
            paused_at=from_epoch(row["paused_at"]),
            paused_by=row["paused_by"],
            pause_reason=row["pause_reason"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class AppRecord:
    """An app: functions registered together, in process ("python") or over HTTP ("sdk").

    An SDK app is served at `url` by an official Inngest SDK (`sdk`, e.g. "py:v0.5.19");
    `checksum` identifies its last sync, so that an identical re-sync changes nothing.
    """

    id: str
    kind: Literal["python", "sdk"]
    synced_at: datetime
    url: str | None = None
    sdk: str | None = None
    framework: str | None = None
    app_version: str | None = None
    checksum: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> AppRecord:
        """Build from a database row."""
        return cls(
            id=row["id"],
            kind=row["kind"],
            synced_at=_at(row["synced_at"]),
            url=row["url"],
            sdk=row["sdk"],
            framework=row["framework"],
            app_version=row["app_version"],
            checksum=row["checksum"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class AppSync:
    """What a sync changed: whether anything did, and the functions it removed."""

    modified: bool
    removed: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class EventRecord:
    """A stored event. `internal_id` is the server's ULID; `id` is the sender's id (or the same)."""

    internal_id: str
    id: str
    name: str
    data: str
    user: str
    ts: int
    received_at: datetime
    source: str = "api"
    sent_by: str | None = None  # the event key or API token it came with (its name)

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> EventRecord:
        """Build from a database row."""
        return cls(
            internal_id=row["internal_id"],
            id=row["id"],
            name=row["name"],
            data=row["data"],
            user=row["user"],
            ts=int(row["ts"]),
            received_at=_at(row["received_at"]),
            source=row["source"],
            sent_by=row["sent_by"],
        )

    def payload(self) -> dict[str, Any]:
        """The event as user code sees it: `{id, name, data, user, ts}`."""
        return {
            "id": self.id,
            "name": self.name,
            "data": json.loads(self.data),
            "user": json.loads(self.user),
            "ts": self.ts,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Slot:
    """A concurrency slot a run holds while it executes: at most `limit` per `key`."""

    key: str
    limit: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Bucket:
    """A throttle, rate limit or idempotency bucket: `limit` starts per period, per `key`."""

    key: str
    limit: int
    period_seconds: float
    burst: int = 1


@dataclass(frozen=True, kw_only=True, slots=True)
class Gather:
    """Debounce or batch: triggers of `key` collect in one queued run until it is due.

    Debounce: the run takes each new event and is due `delay_seconds` after the last, at most
    `timeout_seconds` after the first. Batch: the run takes up to `max_size` events and is due
    when full or `delay_seconds` after the first.
    """

    kind: Literal["debounce", "batch"]
    key: str
    delay_seconds: float
    timeout_seconds: float | None = None
    max_size: int = 1


@dataclass(frozen=True, kw_only=True, slots=True)
class NewListener:
    """A `cancel_on` listener: an event named `event_name` for which `expression` holds.

    A `match` listener has no expression: the incoming event's value at `match_path` must
    equal `match_value` (the run's own value there, as JSON text), found by index.
    """

    event_name: str
    expression: str | None
    expires_at: datetime
    match_path: str | None = None
    match_value: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class FlowPlan:
    """A new run's flow control, with every key already evaluated (the store runs no CEL).

    `refuse` says what becomes of a trigger that a limit refuses: "record" stores it as a
    SKIPPED run (events, cron), "raise" raises `Conflict` (Run now, replays).
    """

    slots: tuple[Slot, ...] = ()
    priority: int = 0
    throttle: Bucket | None = None
    rate_limit: Bucket | None = None
    idempotency: Bucket | None = None
    singleton: tuple[str, Literal["skip", "cancel"]] | None = None
    gather: Gather | None = None
    cancel_on: tuple[NewListener, ...] = ()
    start_by: datetime | None = None
    refuse: Literal["record", "raise"] = "record"


NO_FLOW = FlowPlan()


@dataclass(frozen=True, kw_only=True, slots=True)
class NewRun:
    """A run to create. `available_at` is when a worker may first claim it.

    `trigger_reason`: the reason a person gave for starting it (a replay, a rerun).
    """

    id: str
    function_id: str
    trigger_kind: TriggerKind
    event_ids: Sequence[str] = ()
    trigger_by: str | None = None
    trigger_reason: str | None = None
    replay_of: str | None = None
    idempotency_key: str | None = None
    available_at: datetime | None = None
    timeout_seconds: float | None = None
    flow: FlowPlan = NO_FLOW
    parent_run_id: str | None = None
    parent_step: str | None = None
    dry_run: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class RunRecord:
    """A run as stored, with its outcome, timing, progress and counters.

    `reason` says in words why it was skipped or cancelled; a run cancelled by request has who
    asked (`cancel_requested_by`: "api", "dashboard", "client") and the reason they gave.
    """

    id: str
    function_id: str
    status: RunStatus
    detail: str | None
    trigger_kind: TriggerKind
    trigger_by: str | None
    event_id: str | None
    event_ids: tuple[str, ...]
    replay_of: str | None
    attempt: int
    failures: int
    output: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    timeout_at: datetime | None
    progress_done: float | None
    progress_total: float | None
    progress_message: str | None
    counters: str
    progress_at: datetime | None = None
    saved_before_step: int = -1
    reason: str | None = None
    cancelled_by: str | None = None
    parent_run_id: str | None = None
    parent_step: str | None = None
    start_by: datetime | None = None
    dry_run: bool = False
    cancel_requested_by: str | None = None
    cancel_reason: str | None = None
    trigger_reason: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> RunRecord:
        """Build from a database row."""
        return cls(
            id=row["id"],
            function_id=row["function_id"],
            status=row["status"],
            detail=row["detail"],
            trigger_kind=row["trigger_kind"],
            trigger_by=row["trigger_by"],
            event_id=row["event_id"],
            event_ids=tuple(json.loads(row["event_ids"])),
            replay_of=row["replay_of"],
            attempt=row["attempt"],
            failures=row["failures"],
            output=row["output"],
            error=row["error"],
            created_at=_at(row["created_at"]),
            started_at=from_epoch(row["started_at"]),
            ended_at=from_epoch(row["ended_at"]),
            timeout_at=from_epoch(row["timeout_at"]),
            progress_done=row["progress_done"],
            progress_total=row["progress_total"],
            progress_message=row["progress_message"],
            progress_at=from_epoch(row["progress_at"]),
            counters=row["counters"],
            saved_before_step=row["saved_before_step"],
            reason=row["reason"],
            cancelled_by=row["cancelled_by"],
            parent_run_id=row["parent_run_id"],
            parent_step=row["parent_step"],
            start_by=from_epoch(row["start_by"]),
            dry_run=bool(row["dry_run"]),
            cancel_requested_by=row["cancel_requested_by"],
            cancel_reason=row["cancel_reason"],
            trigger_reason=row["trigger_reason"],
        )

    @property
    def ended(self) -> bool:
        """True once the run is COMPLETED, FAILED, CANCELLED or SKIPPED."""
        return self.status in END_STATUSES


@dataclass(frozen=True, kw_only=True, slots=True)
class StepRecord:
    """A step of a run. `hash` is the Inngest-style SHA-1 of `id`; `output`/`error` are JSON."""

    run_id: str
    hash: str
    id: str
    kind: StepKind
    status: StepStatus
    position: int
    started_at: datetime
    ended_at: datetime | None = None
    output: str | None = None
    error: str | None = None
    attempts: int = 1
    wake_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> StepRecord:
        """Build from a database row."""
        return cls(
            run_id=row["run_id"],
            hash=row["hash"],
            id=row["id"],
            kind=row["kind"],
            status=row["status"],
            position=row["position"],
            output=row["output"],
            error=row["error"],
            attempts=row["attempts"],
            started_at=_at(row["started_at"]),
            ended_at=from_epoch(row["ended_at"]),
            wake_at=from_epoch(row["wake_at"]),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class AttemptRecord:
    """A failed attempt of a step (`step_hash` set) or of the function (`step_hash` "")."""

    run_id: str
    step_hash: str
    step_id: str | None
    attempt: int
    error: str
    started_at: datetime
    ended_at: datetime
    retry_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> AttemptRecord:
        """Build from a database row."""
        return cls(
            run_id=row["run_id"],
            step_hash=row["step_hash"],
            step_id=row["step_id"],
            attempt=row["attempt"],
            error=row["error"],
            started_at=_at(row["started_at"]),
            ended_at=_at(row["ended_at"]),
            retry_at=from_epoch(row["retry_at"]),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class LogRecord:
    """One line written with `ctx.log`."""

    run_id: str
    ts: datetime
    level: str
    message: str
    step_id: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> LogRecord:
        """Build from a database row."""
        return cls(
            run_id=row["run_id"],
            ts=_at(row["ts"]),
            level=row["level"],
            message=row["message"],
            step_id=row["step_id"],
        )


RECLAIM_LEVEL = "reclaim"
"""The level of the log line the store writes when a worker takes over an expired lease."""


def reclaim_log(
    run_id: str, lost_by: str, expired_at: datetime, owner: str, now: datetime
) -> LogRecord:
    """The run's log line saying its worker stopped renewing its lease and `owner` took over."""
    late = format_duration(max(0.0, (now - expired_at).total_seconds()))
    return LogRecord(
        run_id=run_id,
        ts=now,
        level=RECLAIM_LEVEL,
        message=f"Worker {lost_by} stopped renewing its lease (it expired {late} before); "
        f"worker {owner} took the run over and resumes it after its last completed step.",
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class WaitRecord:
    """A run waiting for an event named `event_name` matching `expression` (CEL)."""

    run_id: str
    step_hash: str
    event_name: str
    expression: str | None
    created_at: datetime
    expires_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> WaitRecord:
        """Build from a database row."""
        return cls(
            run_id=row["run_id"],
            step_hash=row["step_hash"],
            event_name=row["event_name"],
            expression=row["expression"],
            created_at=_at(row["created_at"]),
            expires_at=_at(row["expires_at"]),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkerRecord:
    """A registered worker: its capacity, its load and when its claim loop last reported."""

    id: str
    hostname: str
    pid: int
    slots: int
    inflight: int
    functions: tuple[str, ...]
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_seconds: float
    stopping: bool = False
    abandoned: int = 0  # slots held by abandoned steps (counted in `inflight`)

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> WorkerRecord:
        """Build from a database row."""
        return cls(
            id=row["id"],
            hostname=row["hostname"],
            pid=row["pid"],
            slots=row["slots"],
            inflight=row["inflight"],
            functions=tuple(json.loads(row["functions"])),
            started_at=_at(row["started_at"]),
            heartbeat_at=_at(row["heartbeat_at"]),
            heartbeat_seconds=row["heartbeat_seconds"],
            stopping=bool(row["stopping"]),
            abandoned=row["abandoned"],
        )

    def alive(self, now: datetime) -> bool:
        """Its claim loop reported within three heartbeat periods, and it is not stopping."""
        silent = (now - self.heartbeat_at).total_seconds()
        return silent <= 3 * self.heartbeat_seconds and not self.stopping


@dataclass(frozen=True, kw_only=True, slots=True)
class CronState:
    """A schedule's last tick (run, or skipped by policy) and how many ticks it never ran."""

    last_tick: datetime
    missed_total: int

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> CronState:
        """Build from a database row."""
        return cls(last_tick=_at(row["last_tick"]), missed_total=row["missed_total"])


@dataclass(frozen=True, kw_only=True, slots=True)
class Lease:
    """Proof that a worker owns a run; checked (and renewed for `seconds`) at every commit.

    `parent_run_id`: the run that started this one by a step, locked first when this one ends;
    `keyed`: the run holds concurrency slots (freeing them wakes other workers).
    """

    run_id: str
    owner: str
    seconds: float
    parent_run_id: str | None = None
    keyed: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class ClaimedRun:
    """A run a worker just claimed, with everything needed to replay it.

    `origin` is how the run was started, (trigger_kind, trigger_by), as its function sees it:
    the run's own, or for a parallel branch its parent run's (read with the claim).
    """

    run: RunRecord
    lease: Lease
    events: tuple[EventRecord, ...]
    steps: tuple[StepRecord, ...]
    step_failures: Mapping[str, int]
    origin: tuple[TriggerKind, str | None]


@dataclass(kw_only=True, slots=True)
class RunDelta:
    """What a run accumulated since its last commit: progress, counters and log lines."""

    progress: tuple[float, float | None, str | None] | None = None
    counters: dict[str, float] = field(default_factory=dict)
    logs: list[LogRecord] = field(default_factory=list)
    # Set when the counters and logs cover all code before the step at this position.
    saved_before_step: int | None = None

    def __bool__(self) -> bool:
        return (
            self.progress is not None
            or bool(self.counters)
            or bool(self.logs)
            or self.saved_before_step is not None
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class RunEnd:
    """A run that just ended, as its lifecycle events and its parent need it."""

    run_id: str
    function_id: str
    status: RunStatus
    output: str | None
    error: str | None
    event_ids: tuple[str, ...]
    parent_run_id: str | None
    parent_step: str | None
    reason: str | None = None
    trigger_kind: TriggerKind = "event"

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> RunEnd:
        """Build from a database row."""
        return cls(
            run_id=row["id"],
            function_id=row["function_id"],
            status=row["status"],
            output=row["output"],
            error=row["error"],
            event_ids=tuple(json.loads(row["event_ids"])),
            parent_run_id=row["parent_run_id"],
            parent_step=row["parent_step"],
            reason=row["reason"],
            trigger_kind=row["trigger_kind"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class NewWait:
    """A wait to register when a run parks on `wait_for_event`."""

    step_hash: str
    event_name: str
    expression: str | None
    expires_at: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class NewAttempt:
    """A failed attempt to record."""

    step_hash: str
    step_id: str | None
    attempt: int
    error: str
    started_at: datetime
    retry_at: datetime | None


@dataclass(frozen=True, kw_only=True, slots=True)
class RunFilter:
    """Criteria for listing runs, newest first, paged by `before` (a run id cursor).

    Runs are ordered by (created_at, id), newest first; `before` is the id of the last run of
    the previous page, and the next page starts strictly after it in that order. The time
    window is half-open: `created_after <= created_at < created_before`. `q` keeps the runs
    whose triggering event's data contains it (case-insensitively) as JSON text: a substring
    test on every candidate run's event, so narrow with the other criteria on large stores.
    `run_ids` keeps only the runs with those ids (runs selected one by one).
    """

    function_id: str | None = None
    status: RunStatus | None = None
    event_id: str | None = None
    parent_run_id: str | None = None
    trigger_kind: TriggerKind | None = None
    dry_run: bool | None = None
    error_name: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    q: str | None = None
    run_ids: tuple[str, ...] | None = None
    before: str | None = None
    limit: int = 50


@dataclass(frozen=True, kw_only=True, slots=True)
class FunctionStats:
    """A function's recent record: its newest run, and the runs that ended since a time.

    Attributes:
        last_run: The newest run by creation time, or None if it never ran.
        ended: Runs that ended since the time asked for, counted by status.
    """

    function_id: str
    last_run: RunRecord | None
    ended: Mapping[str, int]


@dataclass(frozen=True, kw_only=True, slots=True)
class RunTiming:
    """A run that ended: its status, when, and how long it ran (None if it never started)."""

    status: RunStatus
    ended_at: datetime
    seconds: float | None


@dataclass(frozen=True, kw_only=True, slots=True)
class LeasedRun:
    """A run a worker holds the lease of (in flight on it, or left there by a dead worker)."""

    run_id: str
    function_id: str
    worker_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class RunSummary:
    """What a runs list shows of a run beyond its record: its event's name and data, its steps.

    `data` is the start of the event's data as stored (JSON text), `data_length` its whole
    length; both are None for a run without an event. `steps` counts the steps it recorded.
    """

    event_name: str | None
    data: str | None
    data_length: int | None
    steps: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Backlog:
    """One function's queue right now, as its metrics report it.

    Attributes:
        function_id: The function.
        due: Runs due and not leased: waiting for a worker (or for a concurrency slot).
        oldest_due_at: When the longest-waiting of those fell due; None without any.
        waiting: Runs held back by flow control, by detail code: THROTTLED, DEBOUNCING and
            BATCHING (queued until a later time), CONCURRENCY (due, but their key is full).
        step_since: When the longest-running step in flight started (as the heartbeats
            of the workers holding its run recorded it); None without any.
    """

    function_id: str
    due: int = 0
    oldest_due_at: datetime | None = None
    waiting: Mapping[str, int] = field(default_factory=dict)
    step_since: datetime | None = None


class EventRouting(Protocol):
    """What the store asks the engine while ingesting events, inside the same transaction."""

    def runs_for(self, event: EventRecord, functions: Sequence[FunctionRecord]) -> list[NewRun]:
        """The runs this event starts."""
        ...

    def wait_matches(
        self, wait: WaitRecord, event: EventRecord, trigger: EventRecord | None
    ) -> bool:
        """Whether `event` satisfies `wait`; `trigger` is the waiting run's first event."""
        ...

    def condition_holds(
        self, expression: str | None, event: EventRecord, trigger: EventRecord | None, *, where: str
    ) -> bool:
        """Whether a CEL condition (e.g. a `cancel_on`'s) holds: `event` = trigger, `async`."""
        ...

    def triggers_on(self, name: str, functions: Sequence[FunctionRecord]) -> bool:
        """Whether any of `functions` has a trigger for events named `name`."""
        ...

    def lifecycle_events(
        self, ended: RunEnd, events: Sequence[EventRecord], names: Sequence[str], now: datetime
    ) -> list[EventRecord]:
        """The system events named `names` (`stepline/function.*`) announcing a run's end."""
        ...


class LeaderLock(Protocol):
    """One scheduler leader at a time: `acquire` is True while this process leads."""

    def acquire(self) -> bool:
        """Take or keep the lock without waiting; False if another process holds it."""
        ...

    def release(self) -> None:
        """Give the lock up."""
        ...


class Store(AccessStore, RetentionStore, BlobStore, Protocol):
    """Durable state of events, runs, steps and the queue.

    Every method is one transaction: it happens entirely or not at all. Methods that take a
    `Lease` raise `LeaseLost` when the caller no longer owns the run (lease expired and
    reclaimed, or run cancelled or timed out); nothing is written then.

    `tally` counts, in memory, this process's failed transactions, outages and the runs its
    cancels and timeouts ended (for its metrics).
    """

    tally: StoreTally

    def upgrade(self) -> None:
        """Apply pending schema migrations."""
        ...

    def check_schema(self) -> None:
        """Raise `SchemaOutOfDate` unless migrations are up to date (`stepline db upgrade`)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...

    def leader_lock(self) -> LeaderLock:
        """A lock electing one scheduler leader among processes sharing this database."""
        ...

    def add_wakeup(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from any thread) whenever this process makes work available."""
        ...

    def add_end_listener(self, callback: Callable[[list[str]], None]) -> None:
        """Call `callback(run_ids)` (from any thread) after runs were ended by a cancel or timeout.

        Runs ended in this process are reported after the ending transaction commits; on
        PostgreSQL those ended by other processes too (NOTIFY). A worker executing one of them
        checks its lease at once instead of at its next heartbeat.
        """
        ...

    # functions
    def sync_functions(
        self, app_id: str, functions: Sequence[FunctionRecord], now: datetime
    ) -> None:
        """Register an app's functions, replacing their previous configuration."""
        ...

    def list_functions(self) -> list[FunctionRecord]:
        """All registered functions."""
        ...

    def sync_app(
        self,
        app: AppRecord,
        functions: Sequence[FunctionRecord],
        now: datetime,
        routing: EventRouting,
    ) -> AppSync:
        """Replace an SDK app's function set with `functions`, all or nothing.

        Functions the app no longer has are removed (their triggers and cron ticks stop) and
        their active runs cancelled. When `app.checksum` equals the stored one, only the
        app's `synced_at` moves. Raises `Conflict` when a function id belongs to another app,
        or the app id to a Python app.
        """
        ...

    def list_apps(self) -> list[AppRecord]:
        """Every app, by id."""
        ...

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

        A pause records `now` (default: the current time), `by` and `reason`; pausing a paused
        function keeps the first pause's record, and resuming clears it.

        A paused function starts no runs from events (routing skips it in every process from
        the next event on) or cron ticks (its ticks pass without a run); runs already started
        go on. Registering the app again keeps the flag.
        """
        ...

    def function_stats(self, since: datetime) -> dict[str, FunctionStats]:
        """Per function id: its newest run, and the runs ended at or after `since` by status.

        Functions that never ran are absent. Two queries in all, whatever the number of
        functions: one grouped count over the `ended_at` index, one newest-run lookup per
        function over the (function_id, created_at) index.
        """
        ...

    def function_timings(self, function_id: str, since: datetime) -> list[RunTiming]:
        """One function's runs that ended at or after `since`, oldest end first.

        A range scan of the (ended_at, function_id, status) index over the window: the runs
        of every function that ended in it, never every run this function ever had.
        """
        ...

    # events and runs
    def ingest_events(
        self, events: Sequence[EventRecord], routing: EventRouting, now: datetime
    ) -> list[str]:
        """Store events, start the runs they trigger and resume the waits they satisfy.

        Idempotent per event id for 24 hours: a repeated id stores nothing and starts nothing,
        and its original internal id is returned in its place. Events are routed against the
        registry as of this transaction, whichever process changed it last.
        """
        ...

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
        """Store `events` (if any) and create one run, through its flow control.

        `steps` and `logs` are the run's from the start: a rerun's reused steps (memoized,
        not executed again) and the line saying so.

        Raises `Conflict` on a repeated key, or when flow control refuses a run whose plan
        says "raise" ("Run now"); `Conflict.run_id` is then the run in the way.
        """
        ...

    def create_runs(
        self, runs: Sequence[NewRun], now: datetime, routing: EventRouting
    ) -> list[str]:
        """Create several runs in one transaction (all or none); returns their ids.

        Raises `Conflict` on a repeated idempotency key, and then creates none.
        """
        ...

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

        `routing` is required with a `run` (its flow control may end other runs).

        If the function is paused the tick is recorded but `run` and `events` are not stored
        (the tick is skipped, not postponed); the result is True all the same.
        """
        ...

    def cron_last_tick(self, function_id: str, schedule: str) -> datetime | None:
        """The last tick recorded for a schedule, or None if it never ran."""
        ...

    def cron_states(self) -> dict[tuple[str, str], CronState]:
        """Every schedule's last tick and missed-tick count, by (function id, schedule)."""
        ...

    # the queue
    def claim_runs(
        self,
        owner: str,
        limit: int,
        now: datetime,
        lease_seconds: float,
        function_ids: Sequence[str],
        executing: Sequence[str] = (),
    ) -> list[ClaimedRun]:
        """Lease up to `limit` due runs of `function_ids` (or runs whose lease expired).

        Runs whose lease expired come first, except `executing`: the claimer's own runs in
        flight, whose lease its heartbeat renews (taken over by their own worker, a replay
        still committing would race a second one). Every claimed run is marked RUNNING (its
        first start and deadline recorded) and returned with its events, steps and failure
        counts.
        """
        ...

    def next_due_at(self, function_ids: Sequence[str] | None = None) -> datetime | None:
        """When the earliest unleased queue item, lease expiry or run timeout falls due.

        With `function_ids`, only queue items of those functions count (None: the whole queue).
        """
        ...

    def slot_waits(self, run_ids: Sequence[str], now: datetime) -> dict[str, str]:
        """Per run among `run_ids` that is due but held back by a full concurrency key: the key."""
        ...

    def extend_leases(
        self,
        owner: str,
        run_ids: Sequence[str],
        until: datetime,
        steps: Mapping[str, tuple[str, datetime]] | None = None,
    ) -> set[str]:
        """Extend leases; returns the ids whose lease this owner no longer holds.

        `steps`: per run, the step it is executing and since when (shown as in flight).
        """
        ...

    def step_in_flight(self, run_id: str) -> tuple[str, datetime] | None:
        """The step a leased run is executing and since when, as its worker last said."""
        ...

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
        """Save a finished step (and events it sends) with the run's progress, atomically.

        Raises `Conflict` if the step is already stored or, with `consume_wait`, if an event
        resolved the wait first.
        """
        ...

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
        children: Sequence[StepRecord] = (),
        runs: Sequence[NewRun] = (),
        events: Sequence[EventRecord] = (),
        routing: EventRouting | None = None,
    ) -> None:
        """Release a run until `available_at`, recording why (sleep, wait or failed attempt).

        `runs` (with their `events`) start in the same transaction: an invoked run or the
        branches of a `step.parallel`; `children` are the parent's steps that wait for them.
        """
        ...

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

        In the same transaction: its lifecycle events, and its parent's step if it has one.
        """
        ...

    def save_progress(self, lease: Lease, delta: RunDelta, now: datetime) -> None:
        """Save progress and log lines between steps (throttled by the caller) at `now`."""
        ...

    def release_runs(self, owner: str, run_ids: Sequence[str], now: datetime) -> int:
        """Give leased runs back to the queue, due now (a worker shutting down)."""
        ...

    # workers
    def register_worker(self, worker: WorkerRecord) -> None:
        """Record a worker (replacing a record with its id); forgets long-dead workers."""
        ...

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
        ...

    def deregister_worker(self, worker_id: str) -> None:
        """Forget a worker that stopped."""
        ...

    def list_workers(self) -> list[WorkerRecord]:
        """Registered workers, most recent heartbeat first."""
        ...

    def leased_runs(self) -> list[LeasedRun]:
        """The runs whose lease a worker holds, by worker id then run id (queue items only)."""
        ...

    def run_summaries(self, run_ids: Sequence[str], data_chars: int) -> dict[str, RunSummary]:
        """Each run's summary by id, its event's data cut at `data_chars` (unknown ids left out)."""
        ...

    def change_mark(self) -> object:
        """A value that differs once any transaction committed since the last call.

        From any process; equal values mean nothing changed. One cheap query (the live
        streams' change feed).
        """
        ...

    def backlog(self, now: datetime) -> list[Backlog]:
        """Per function with runs due, held back by flow control or in a step: its `Backlog`.

        A few grouped reads, each bounded by an index over active runs only (due and leased
        queue items, queued runs), never the runs' history: cheap enough for every scrape.
        """
        ...

    def cancel_run(
        self,
        run_id: str,
        now: datetime,
        routing: EventRouting,
        *,
        by: str | None = None,
        reason: str | None = None,
    ) -> RunRecord:
        """Cancel a queued, running, sleeping or waiting run; a no-op on an ended run.

        The run records who asked (`by`) and the reason they gave, if any.
        """
        ...

    def cancel_runs(
        self,
        run_ids: Sequence[str],
        now: datetime,
        routing: EventRouting,
        *,
        by: str | None = None,
        reason: str | None = None,
    ) -> int:
        """Cancel every active run among `run_ids` in one transaction; returns how many.

        Each records `by` and `reason` as with `cancel_run`.

        Ended and unknown ids are skipped, so repeating a call cancels nothing more.
        """
        ...

    def fail_timed_out_runs(self, now: datetime, routing: EventRouting) -> list[str]:
        """End every active run past a deadline: FAILED if it started, else CANCELLED."""
        ...

    def sweep(self, now: datetime) -> None:
        """Forget flow-control state that can no longer matter (expired buckets, listeners)."""
        ...

    # reading
    def get_run(self, run_id: str) -> RunRecord:
        """One run; raises `NotFound`."""
        ...

    def list_runs(self, run_filter: RunFilter) -> list[RunRecord]:
        """Runs matching the filter, newest first.

        Raises `NotFound` when the `before` cursor names no run.
        """
        ...

    def list_run_ids(self, run_filter: RunFilter, *, active_only: bool = False) -> list[str]:
        """The ids `list_runs` would return (only QUEUED and RUNNING runs if `active_only`)."""
        ...

    def get_steps(self, run_id: str) -> list[StepRecord]:
        """A run's steps in the order they were first reached."""
        ...

    def get_attempts(self, run_id: str) -> list[AttemptRecord]:
        """A run's failed attempts, oldest first."""
        ...

    def get_logs(self, run_id: str) -> list[LogRecord]:
        """A run's log lines, oldest first."""
        ...

    def get_event(self, internal_id: str) -> EventRecord:
        """One event by its internal id (or sender id); raises `NotFound`."""
        ...

    def get_events(self, internal_ids: Sequence[str]) -> list[EventRecord]:
        """Events by internal id, in the order given (unknown ids are left out)."""
        ...

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
        """Events, newest first, paged by `before` (an internal id cursor).

        `name` must match exactly, `name_prefix` start the name (case-sensitively; a test
        on each event read newest first, so a rare prefix reads far); the time window is
        half-open: `received_after <= received_at < received_before`.
        """
        ...

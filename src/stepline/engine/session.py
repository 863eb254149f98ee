"""One replay of one run: the step backend behind `ctx.step`, `ctx.log`, `progress` and `count`.

Memoized steps return their stored results; the first new step executes inline and is committed
in one transaction with the run's progress; the run parks (raising `Parked` through user code)
only to sleep, wait for an event, or back off before a retry.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from stepline import errors
from stepline._checks import is_number, is_text
from stepline.engine import tracing
from stepline.engine.clock import Clock
from stepline.engine.events import INVOKED_EVENT, build_event
from stepline.engine.outputs import Outputs
from stepline.engine.retry import RetryPolicy, describe, next_attempt_at
from stepline.engine.routing import Routing
from stepline.sdk.step import InvokeSpec, StepKey, WaitSpec, hash_step_id
from stepline.store.base import (
    ClaimedRun,
    EventRecord,
    FunctionRecord,
    LogRecord,
    NewAttempt,
    NewRun,
    NewWait,
    RunDelta,
    StepKind,
    StepRecord,
    Store,
)

if TYPE_CHECKING:
    from stepline.engine.metrics import Metrics, StepOutcome

logger = logging.getLogger("stepline.run")
_UNTRACED = nullcontext()
PROGRESS_FLUSH_SECONDS = 0.5
DRY_RUN_LINE_CHARS = 2000  # an unsent event's JSON, as recorded on the log


class Parked(BaseException):
    """The run was parked (its state is committed); unwinds user code back to the executor.

    A BaseException so that `except Exception` in user code cannot swallow it.
    """


class Lost(BaseException):
    """This worker no longer owns the run (cancelled, timed out or reclaimed): stop replaying.

    A BaseException so that `except Exception` in user code cannot swallow it and go on to
    start further steps of a run that has ended.
    """


class Restart(BaseException):
    """The run's stored state changed under it (an event resolved a wait); replay it afresh."""


class BranchDone(BaseException):
    """A parallel branch's replay reached the end of its branch: the run ends with `value`."""

    def __init__(self, value: Any) -> None:
        super().__init__("branch done")
        self.value = value


# How long an invoke without a timeout, or a parallel group, may keep its run parked.
PARKED_AT_MOST = timedelta(days=365)
_NOT_IN_BRANCH = ("wait_for_event", "invoke", "parallel")


def _branch_id(key: StepKey, index: int) -> str:
    return f"{key.id}[{index}]"


def _to_replay(steps: Sequence[StepRecord], branch: str | None) -> int:
    """How many memoized steps this replay will look up before it reaches new code.

    Not a parallel group's own step or its branches' markers (read directly, never looked up),
    nor, in a branch's replay, the steps of the group's other branches (it never runs them).
    """
    finished = [s for s in steps if s.status in ("completed", "failed")]
    others: tuple[str, ...] = ()
    marker = next((s for s in steps if s.kind == "branch" and s.hash == branch), None)
    if marker is not None:
        group = marker.id.rsplit("[", 1)[0]
        siblings = {s.id for s in steps if s.kind == "branch" and s.id.startswith(f"{group}[")}
        others = tuple(f"{sibling}/" for sibling in siblings - {marker.id})
    return sum(
        1
        for s in finished
        if s.kind not in ("parallel", "branch") and not (others and s.id.startswith(others))
    )


def _group_position(claimed: ClaimedRun) -> int:
    """A branch's group's position in its parent's replay (-1 for a run that is no branch)."""
    if claimed.run.trigger_kind != "parallel":
        return -1
    marker = next((s for s in claimed.steps if s.hash == claimed.run.parent_step), None)
    return marker.position if marker is not None else -1


class RunSession:
    """The step backend and run hooks for one claimed run, used by one thread or task."""

    def __init__(
        self,
        claimed: ClaimedRun,
        *,
        max_attempts: int,
        store: Store,
        clock: Clock,
        routing: Routing,
        policy: RetryPolicy,
        rng: Callable[[], float],
        draining: threading.Event | None = None,
        lost: threading.Event | None = None,
        function_config: Callable[[], str] | None = None,
        metrics: Metrics | None = None,
        outputs: Outputs | None = None,
    ) -> None:
        self.run = claimed.run
        self.lease = claimed.lease
        self._events = claimed.events
        # A parallel branch replays its parent's function: its steps are the parent's.
        self._branch = claimed.run.parent_step if claimed.run.trigger_kind == "parallel" else None
        self.steps_run_id = (
            (claimed.run.parent_run_id or self.run.id) if self._branch else self.run.id
        )
        self._scope: str | None = None  # "group[i]" while a parallel branch's code runs
        self._function_config = function_config
        self._memo = {step.hash: step for step in claimed.steps}
        self._failures = dict(claimed.step_failures)
        self._to_replay = _to_replay(claimed.steps, self._branch)
        # Counters and logs from code before the step at this position are already stored (in
        # a branch, the parent stored those of the code before the group).
        self._saved_before = max(claimed.run.saved_before_step, _group_position(claimed))
        self._seen: dict[str, int] = {}
        self._position = 0
        self._current_step: str | None = None
        # The step executing and since when, for the worker's heartbeat to record.
        self.in_flight: tuple[str, datetime] | None = None
        self._halted: BaseException | None = None
        self._delta = RunDelta()
        self._last_flush = time.monotonic()
        self.began = clock.now()
        self._max_attempts = max_attempts
        self._store = store
        self._clock = clock
        self._routing = routing
        self._policy = policy
        self._rng = rng
        self._draining = draining
        self._lost = lost
        self._metrics = metrics
        self._outputs = outputs or Outputs(store, clock=clock)
        self.trace = tracing.run_trace(claimed.run, claimed.events)  # None: tracing is off

    # -- StepBackend -------------------------------------------------------------------------

    def now(self) -> datetime:
        """The engine clock's current time."""
        return self._clock.now()

    @property
    def halted(self) -> BaseException | None:
        """The signal that ended this replay (`Parked`, `Restart`, `Lost`), even if swallowed."""
        return self._halted

    @property
    def lost(self) -> bool:
        """True once the worker found this run's lease gone (cancelled, timed out, taken over).

        Nothing the replay does can be committed then; it stops at its next step or commit,
        without touching the store.
        """
        return self._lost is not None and self._lost.is_set()

    @property
    def lost_flag(self) -> threading.Event | None:
        """The worker's flag for this replay, set once the run's lease is gone (`ctx.cancelled`)."""
        return self._lost

    def _lost_signal(self) -> Lost:
        return Lost(f"run {self.run.id} is no longer leased by this worker")

    @property
    def replaying(self) -> bool:
        """True while the code running has run before and its counts and logs are stored.

        That is the code before the last memoized step, and the code before a step whose
        start (or a sleep or wait) already saved them.
        """
        return self._to_replay > 0 or self._position <= self._saved_before

    def key(self, step_id: str) -> StepKey:
        """Hash the next use of `step_id` (`id`, then `id:1`, `id:2`, ...) and place it."""
        if self._halted is None and self.lost:
            self._halted = self._lost_signal()
        if self._halted is not None:
            # The replay is over (parked, restarted or lost); a step reached from a `finally`
            # or `except BaseException` block in user code must not start.
            raise type(self._halted)(*self._halted.args)
        if not is_text(step_id):
            raise errors.InvalidInput("a step id must be a non-empty string", "step_id")
        base = step_id if self._scope is None else f"{self._scope}/{step_id}"
        repeat = self._seen.get(base, 0)
        self._seen[base] = repeat + 1
        unhashed = base if repeat == 0 else f"{base}:{repeat}"
        key = StepKey(id=unhashed, hash=hash_step_id(unhashed), position=self._position)
        self._position += 1
        return key

    def replayed(self, key: StepKey) -> tuple[bool, Any]:
        """(True, stored value) for a memoized step; raises `StepError` for a failed one."""
        step = self._memo.get(key.hash)
        if step is None or step.status not in ("completed", "failed"):
            return False, None
        self._to_replay -= 1
        if step.status == "failed":
            error = json.loads(step.error or "{}")
            raise errors.StepError(
                key.id,
                error.get("name", "Error"),
                error.get("message", ""),
                error.get("traceback", ""),
            )
        return True, self._outputs.value(step.output)

    def started(self, key: StepKey) -> datetime:
        """Note that a new step begins (log lines are attributed to it).

        If the worker is shutting down, the step does not begin: the run goes back to the
        queue, due now, for another worker (its finished steps are all committed).
        """
        if self._draining is not None and self._draining.is_set():
            self.forget_retried_work()  # the next replay runs the code before this step again
            self._park(self._clock.now(), None)
        if self._delta:
            self._save_before(key.position)
        self._current_step = key.id
        started = self._clock.now()
        self.in_flight = (key.id, started)
        return started

    def attempt(self, key: StepKey) -> AbstractContextManager[object]:
        """The step attempt's trace span, current while it runs (nothing if tracing is off)."""
        return _UNTRACED if self.trace is None else self._traced(key)

    @contextmanager
    def _traced(self, key: StepKey) -> Iterator[None]:
        attempt = self._failures.get(key.hash, 0) + 1
        with tracing.step_attempt(self.trace, key.id, attempt) as span:
            try:
                yield
            except Parked as signal:  # parked for a retry: the user's error is its context
                tracing.step_outcome(span, "retry", signal.__context__)
                raise
            except errors.StepError as exc:
                tracing.step_outcome(span, "error", exc.__cause__ or exc)
                raise
            except BaseException:
                tracing.step_outcome(span, "interrupted")
                raise
            tracing.step_outcome(span, "ok")

    def completed(self, key: StepKey, output: str, started_at: datetime) -> None:
        """Commit a finished `step.run` with the run's progress (a large output as a blob).

        An output over the size limit fails the step instead (`StepOutputError`, not retried).
        """
        try:
            stored = self._outputs.stored(key.id, output)
        except errors.StepOutputError as exc:
            self.failed(key, exc, started_at)
        except errors.StoreUnavailable as exc:  # its blob not written: as a failed commit
            self._halt(Lost(str(exc)), cause=exc)
        self._current_step = None
        self.in_flight = None
        self._commit(self._record(key, "run", started_at, output=stored))
        self._count_attempt("completed", started_at)

    def failed(self, key: StepKey, error: BaseException, started_at: datetime) -> NoReturn:
        """Park the run for a retry of this step, or commit the step's failure and raise."""
        self._current_step = None
        self.in_flight = None
        attempt = self._failures.get(key.hash, 0)
        now = self._clock.now()
        retry_at = next_attempt_at(error, attempt, self._max_attempts, now, self._policy, self._rng)
        described = json.dumps(describe(error))
        record = NewAttempt(
            step_hash=key.hash,
            step_id=key.id,
            attempt=attempt,
            error=described,
            started_at=started_at,
            retry_at=retry_at,
        )
        if retry_at is not None:
            self.forget_retried_work()
            try:
                self._park(retry_at, "RETRYING", attempt=record)
            except Parked:  # committed: the attempt counts
                self._count_attempt("retried", started_at)
                raise
        step = self._record(key, "run", started_at, error=described, status="failed")
        self._commit(step, attempt=record)
        self._count_attempt("failed", started_at)
        raise errors.StepError(
            key.id, type(error).__name__, str(error), json.loads(described)["traceback"]
        ) from error

    def _count_attempt(self, outcome: StepOutcome, started_at: datetime) -> None:
        """Count a step attempt in this process's metrics (in memory)."""
        if self._metrics is not None:
            seconds = (self._clock.now() - started_at).total_seconds()
            self._metrics.step_attempt(self.run.function_id, outcome, seconds)

    def sleep(self, key: StepKey, until: datetime) -> None:
        """Return if the sleep is over (committing it), else park the run until `until`."""
        pending = self._memo.get(key.hash)
        if pending is not None and pending.wake_at is not None:
            until = pending.wake_at
        now = self._clock.now()
        if until <= now:
            started = pending.started_at if pending else now
            self._commit(self._record(key, "sleep", started))
            return
        step = (
            None if pending else self._record(key, "sleep", now, status="sleeping", wake_at=until)
        )
        self._delta.saved_before_step = key.position
        self._park(until, "SLEEPING", step=step)

    def wait(self, key: StepKey, spec: WaitSpec) -> dict[str, Any] | None:
        """None if the wait timed out (committing that), else park until an event or timeout."""
        self._refuse_in_branch("wait_for_event")
        pending = self._memo.get(key.hash)
        now = self._clock.now()
        if pending is not None and pending.wake_at is not None:
            if now < pending.wake_at:
                self._park(pending.wake_at, "WAITING")
            step = self._record(key, "wait", pending.started_at, output="null")
            try:
                self._commit(step, consume_wait=True)
            except errors.Conflict:
                self._halt(Restart())
            return None
        expires = now + spec.timeout
        wait = NewWait(
            step_hash=key.hash,
            event_name=spec.event,
            expression=spec.expression,
            expires_at=expires,
        )
        step = self._record(key, "wait", now, status="waiting", wake_at=expires)
        self._delta.saved_before_step = key.position
        self._park(expires, "WAITING", step=step, wait=wait)

    def send(self, key: StepKey, events: list[dict[str, Any]]) -> list[str]:
        """Store the events and the step in one transaction; returns the events' ids.

        In a dry run the events are checked and recorded on the run's log, not sent.
        """
        now = self._clock.now()
        records = [
            build_event(raw, now=now, field=f"events[{i}]", source="step")
            for i, raw in enumerate(events)
        ]
        records = tracing.with_traceparents(records, tracing.current_traceparent(self.trace))
        ids = [record.internal_id for record in records]
        step = self._record(key, "send_event", now, output=json.dumps(ids))
        if self.run.dry_run:
            for record in records:
                self._delta.logs.append(self._not_sent(record, key.id))
            self._commit(step)
        else:
            self._commit(step, events=records)
        return ids

    def _not_sent(self, event: EventRecord, step_id: str) -> LogRecord:
        """The log line recording an event a dry run did not send."""
        shown = json.dumps({"name": event.name, "data": json.loads(event.data)})
        if len(shown) > DRY_RUN_LINE_CHARS:
            shown = shown[:DRY_RUN_LINE_CHARS] + "…"
        return LogRecord(
            run_id=self.steps_run_id,
            ts=self._clock.now(),
            level="info",
            message=f"dry run: not sent {shown}",
            step_id=step_id,
        )

    def invoke(self, key: StepKey, spec: InvokeSpec) -> Any:
        """Start the invoked run and park; on a later replay, fail the step if it timed out."""
        self._refuse_in_branch("invoke")
        pending = self._memo.get(key.hash)
        now = self._clock.now()
        if pending is not None and pending.wake_at is not None:
            if now < pending.wake_at:
                self._park(pending.wake_at, "INVOKING")
            message = f"the invoked function {spec.function_id!r} did not end in time"
            return self._fail_settled(key, pending, "InvokeTimeout", message)
        target = self._registered(spec.function_id)
        if isinstance(target, str):
            return self._fail_settled(key, None, "InvokeError", target)
        event = build_event(
            {"name": INVOKED_EVENT, "data": spec.data},
            now=now,
            field="data",
            source="invoke",
            internal=True,
        )
        event = tracing.with_traceparent(event, tracing.current_traceparent(self.trace))
        child = self._routing.new_run(
            target.id,
            target.config,
            kind="invoke",
            events=(event,),
            now=now,
            trigger_by=self.run.id,
            parent=(self.steps_run_id, key.hash),
            dry_run=self.run.dry_run,
        )
        expires = now + (spec.timeout or PARKED_AT_MOST)
        step = self._record(key, "invoke", now, status="waiting", wake_at=expires)
        self._delta.saved_before_step = key.position
        self._park(expires, "INVOKING", step=step, runs=[child], events=[event])

    def _registered(self, function_id: str) -> FunctionRecord | str:
        """The function to invoke, or why it cannot be."""
        try:
            functions = {fn.id: fn for fn in self._store.list_functions()}
        except errors.StoreUnavailable as exc:
            self._halt(Lost(str(exc)), cause=exc)
        fn = functions.get(function_id)
        if fn is None:
            return f"could not find function with id {function_id!r}"
        if fn.paused:
            return f"function {function_id!r} is paused"
        return fn

    def _fail_settled(
        self, key: StepKey, pending: StepRecord | None, name: str, message: str
    ) -> NoReturn:
        """Commit the step as failed and raise its `StepError` (`Restart` if settled meanwhile)."""
        error = json.dumps({"name": name, "message": message, "traceback": ""})
        started = pending.started_at if pending else self._clock.now()
        step = self._record(key, "invoke", started, error=error, status="failed")
        try:
            self._commit(step)
        except errors.Conflict:
            self._halt(Restart())
        raise errors.StepError(key.id, name, message)

    def parallel(self, key: StepKey, count: int) -> int | None:
        """Plan the group's branches and park, until all are done (None); in a branch, its index."""
        if self._scope is not None:
            raise errors.NonRetriableError("step.parallel cannot be nested inside a branch")
        if self._branch is not None:
            for index in range(count):
                if hash_step_id(_branch_id(key, index)) == self._branch:
                    return index
        group = self._memo.get(key.hash)
        if group is not None and group.status == "completed":
            return None
        if group is not None:  # branches still running: nothing to do until they end
            self._park(self._clock.now() + PARKED_AT_MOST, "PARALLEL")
        self._plan_branches(key, count)

    def _plan_branches(self, key: StepKey, count: int) -> NoReturn:
        now = self._clock.now()
        config = self._function_config() if self._function_config else '{"triggers": []}'
        children, runs = [], []
        for index in range(count):
            branch_id = _branch_id(key, index)
            branch = StepKey(id=branch_id, hash=hash_step_id(branch_id), position=key.position)
            children.append(self._record(branch, "branch", now, status="waiting"))
            runs.append(
                self._routing.new_run(
                    self.run.function_id,
                    config,
                    kind="parallel",
                    events=self._events,
                    now=now,
                    trigger_by=self.steps_run_id,
                    parent=(self.steps_run_id, branch.hash),
                    dry_run=self.run.dry_run,
                )
            )
        group = self._record(key, "parallel", now, status="waiting")
        self._delta.saved_before_step = key.position
        self._park(now + PARKED_AT_MOST, "PARALLEL", step=group, children=children, runs=runs)

    @contextmanager
    def branch(self, key: StepKey, index: int) -> Iterator[None]:
        """Steps reached inside are scoped to branch `index` of the group (their own ids)."""
        outer, self._scope = self._scope, _branch_id(key, index)
        try:
            yield
        finally:
            self._scope = outer

    def branch_done(self, key: StepKey, value: Any) -> NoReturn:
        """End this branch's replay with its result."""
        self._halt(BranchDone(value))

    def _refuse_in_branch(self, step: str) -> None:
        if self._scope is not None:
            raise errors.NonRetriableError(
                f"step.{step} is not supported inside a step.parallel branch"
            )

    # -- CommandHost (step.exec) ---------------------------------------------------------------

    def flush_log(self) -> None:
        """Save the running step's log lines if they waited half a second (live output)."""
        if self._delta.logs:
            self._maybe_flush()

    @property
    def dry_run(self) -> bool:
        """Whether the run is a dry run."""
        return self.run.dry_run

    def interruption(self) -> str | None:
        """Why a running command must stop now, or None."""
        if self.lost:
            return "the run was cancelled, timed out or taken over"
        if self._draining is not None and self._draining.is_set():
            return "the worker is shutting down"
        return None

    def interrupt(self) -> NoReturn:
        """End the replay: `Lost`, or (the worker is stopping) hand the run back, due now."""
        self._current_step = None
        self.in_flight = None
        if self.lost:
            self._halt(self._lost_signal())
        self.forget_retried_work()  # the next replay runs the code before this step again
        self._park(self._clock.now(), None)

    # -- RunHooks ------------------------------------------------------------------------------

    def log(self, level: str, message: str) -> None:
        """Record a log line (dropped while replaying, so each is stored once)."""
        if self.replaying:
            return
        logger.log(logging.getLevelName(level.upper()), "[%s] %s", self.steps_run_id, message)
        self._delta.logs.append(
            LogRecord(
                run_id=self.steps_run_id,
                ts=self._clock.now(),
                level=level,
                message=str(message),
                step_id=self._current_step,
            )
        )
        self._maybe_flush()

    def progress(self, done: float, total: float | None, message: str | None) -> None:
        """Record progress; written at the next commit or within half a second."""
        for name, value in (("done", done), ("total", total)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise errors.InvalidInput(f"must be a number, not {value!r}", f"progress {name}")
        self._delta.progress = (float(done), None if total is None else float(total), message)
        if not self.replaying:
            self._maybe_flush()

    def count(self, name: str, n: float) -> None:
        """Add to a counter, committed with the next step (not counted while replaying)."""
        if not is_text(name):
            raise errors.InvalidInput("a counter name must be a non-empty string", "name")
        if not is_number(n):
            raise errors.InvalidInput(f"must be a number, not {n!r}", "n")
        if not self.replaying:
            self._delta.counters[name] = self._delta.counters.get(name, 0) + n

    # -- committing ----------------------------------------------------------------------------

    def forget_retried_work(self) -> None:
        """Drop counts and lines written outside steps since the last commit.

        The retry replays that code and counts and logs them again; lines written inside the
        failed step stay, as the record of its attempt.
        """
        self._delta.counters.clear()
        self._delta.logs = [log for log in self._delta.logs if log.step_id is not None]

    def take_delta(self) -> RunDelta:
        """Hand over what accumulated since the last commit."""
        delta, self._delta = self._delta, RunDelta()
        self._last_flush = time.monotonic()
        return delta

    def _save_before(self, position: int) -> None:
        """Store what the code before step `position` reported, before that step runs.

        So progress, counters and logs show while the step runs, not after it; and since the
        run remembers the position, a replay (a retry of that step, say) does not write them
        again. If the store is unreachable they go with the step's commit instead.
        """
        if self.lost:
            return
        delta = RunDelta(
            progress=self._delta.progress,
            counters=self._delta.counters,
            logs=self._delta.logs,
            saved_before_step=position,
        )
        try:
            self._store.save_progress(self.lease, delta, self._clock.now())
        except errors.StoreError:
            return
        self._delta = RunDelta()
        self._saved_before = position
        self._last_flush = time.monotonic()

    def _maybe_flush(self) -> None:
        # Inside a long step only: what code between steps reports is saved when the next
        # step starts, together with the position that keeps a replay from repeating it.
        if self._current_step is None or self.lost:
            return
        if time.monotonic() - self._last_flush < PROGRESS_FLUSH_SECONDS:
            return
        delta = RunDelta(progress=self._delta.progress, logs=self._delta.logs)
        self._last_flush = time.monotonic()
        try:
            self._store.save_progress(self.lease, delta, self._clock.now())
        except errors.StoreError:
            return  # best effort: what was not saved goes with the next commit
        self._delta = RunDelta(counters=self._delta.counters)

    def _record(
        self,
        key: StepKey,
        kind: StepKind,
        started_at: datetime,
        *,
        output: str | None = None,
        error: str | None = None,
        status: Any = "completed",
        wake_at: datetime | None = None,
    ) -> StepRecord:
        pending = status in ("sleeping", "waiting")
        return StepRecord(
            run_id=self.steps_run_id,
            hash=key.hash,
            id=key.id,
            kind=kind,
            status=status,
            position=key.position,
            started_at=started_at,
            ended_at=None if pending else self._clock.now(),
            output=output,
            error=error,
            attempts=self._failures.get(key.hash, 0) + 1,
            wake_at=wake_at,
        )

    def _commit(
        self,
        step: StepRecord,
        *,
        events: list[Any] | None = None,
        consume_wait: bool = False,
        attempt: NewAttempt | None = None,
    ) -> None:
        if self.lost:
            self._halt(self._lost_signal())
        try:
            self._store.commit_step(
                self.lease,
                step,
                self.take_delta(),
                self._clock.now(),
                events=events or (),
                routing=self._routing,
                consume_wait=consume_wait,
                attempt=attempt,
            )
        except (errors.LeaseLost, errors.StoreUnavailable) as exc:
            # Without a commit the replay cannot go on; the run returns to the queue when its
            # lease expires, and its next replay runs this step again.
            self._halt(Lost(str(exc)), cause=exc)
        self._memo[step.hash] = step

    def _park(
        self,
        until: datetime,
        detail: str | None,
        *,
        step: StepRecord | None = None,
        wait: NewWait | None = None,
        attempt: NewAttempt | None = None,
        children: Sequence[StepRecord] = (),
        runs: Sequence[NewRun] = (),
        events: Sequence[EventRecord] = (),
    ) -> NoReturn:
        if self.lost:
            self._halt(self._lost_signal())
        try:
            self._store.park_run(
                self.lease,
                until,
                self.take_delta(),
                self._clock.now(),
                detail=detail,
                step=step,
                wait=wait,
                attempt=attempt,
                children=children,
                runs=runs,
                events=events,
                routing=self._routing,
            )
        except (errors.LeaseLost, errors.StoreUnavailable) as exc:
            self._halt(Lost(str(exc)), cause=exc)
        self._halt(Parked())

    def _halt(self, signal: BaseException, *, cause: BaseException | None = None) -> NoReturn:
        """Raise an engine signal through user code, and again at any step it reaches after."""
        self._halted = signal
        raise signal from cause

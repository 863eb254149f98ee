"""A test kit for users' own tests: run one function to its end, deterministically.

`run_function(fn, event=...)` runs a function in a throwaway SQLite store under a fake clock
and returns its `RunResult` (status, output, steps, logs, counters, the events it sent).
`TestRun` does the same one stage at a time: start the run, `advance` the clock through its
sleeps, retries and wait timeouts, `send` the event a waiting run expects. Everything happens
in the calling thread (no worker threads, no real sleeps), so a test never races::

    from stepline.testing import TestRun, run_function

    result = run_function(sync, event={"name": "shop/sync.requested"},
                          mocks={"fetch-orders": [{"id": 1}]})
    assert result.status == "COMPLETED"

    with TestRun(approve, data={"order": 7}) as run:
        assert run.result.detail == "WAITING"
        run.send({"name": "shop/approved", "data": {"order": 7}})
        assert run.result.output == {"approved": True}

The run goes through the real engine (the same replay, commits and retry rules as in
production); only time is fake. A step mocked by id records the mock's result as that step's
result, without calling the step's function. See docs/testing.md.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from stepline import errors
from stepline._blocking import run_to_end
from stepline._durations import Duration, parse_duration, require_aware
from stepline.engine.clock import FakeClock
from stepline.engine.executor import Executor
from stepline.engine.operations import Operations
from stepline.engine.outputs import Outputs
from stepline.engine.retry import RetryPolicy
from stepline.engine.routing import DRY_RUN_KEY
from stepline.sdk.app import Function
from stepline.sdk.step import AsyncStep, Step
from stepline.store import open_store
from stepline.store.base import FunctionRecord, StepRecord

__all__ = ["LogLine", "RunResult", "StepResult", "TestRun", "run_function"]

WORKER_ID = "stepline-testing"
LEASE_SECONDS = 3600.0  # the clock stands still while a replay executes: never expires
MAX_REPLAYS = 10_000  # per call: a function that keeps starting itself fails the test
MAX_WAKES = 1_000  # wake-ups `finish` moves through before giving up
RETRY_POLICY = RetryPolicy(jitter=0.0)  # the engine's backoff, without its randomness
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class StepResult:
    """A step of the run as stored.

    Attributes:
        id: The step id (`id:N` for its N-th repeat).
        kind: "run", "sleep", "wait", "send_event", "invoke", "parallel" or "branch".
        status: "completed", "failed", "sleeping" or "waiting".
        output: The step's result, decoded from JSON (None while pending or failed).
        error: For a failed step, `{name, message, traceback}`.
        attempts: Attempts made, 1 unless the step was retried.
    """

    id: str
    kind: str
    status: str
    output: Any
    error: dict[str, Any] | None
    attempts: int


@dataclass(frozen=True, kw_only=True)
class LogLine:
    """A line written with `ctx.log` (`step_id` set if written inside a step)."""

    level: str
    message: str
    step_id: str | None


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """The run as it stands: its status and everything it recorded.

    Attributes:
        run_id: The run's id.
        status: "QUEUED", "RUNNING", "COMPLETED", "FAILED" or "CANCELLED".
        detail: Why an active run is parked: "SLEEPING", "WAITING", "RETRYING", ...
        output: The function's return value, decoded from JSON (None unless COMPLETED).
        error: For a failed run, `{name, message, traceback}` of what ended it.
        steps: The steps by id, in the order they were reached.
        logs: The `ctx.log` lines, oldest first.
        counters: The `ctx.count` totals.
        sent_events: The events sent by `step.send_event`, as `{id, name, data, user, ts}`.
    """

    run_id: str
    status: str
    detail: str | None
    output: Any
    error: dict[str, Any] | None
    steps: dict[str, StepResult]
    logs: list[LogLine]
    counters: dict[str, float]
    sent_events: list[dict[str, Any]]

    @property
    def ended(self) -> bool:
        """True once the run is COMPLETED, FAILED or CANCELLED."""
        return self.status in ("COMPLETED", "FAILED", "CANCELLED")


class TestRun:
    """One function's run in a throwaway SQLite store under a fake clock, driven step by step.

    Starting it executes the run until it ends or parks (sleeps, waits for an event, backs off
    before a retry); `advance` and `send` move it on. Use as a context manager, or call
    `close()`, to delete the store.

    Args:
        fn: The function under test (from `@app.function`).
        event: The triggering event `{name, data, ...}`; it must match one of `fn`'s triggers.
        data: Instead of `event`: start the run as "Run now" does, with this event data.
        mocks: Step results by step id. Each `step.run` or `step.exec` with that id (every
            repeat) records the mock as its result instead of calling its function or
            command. A mock is a JSON value, an exception instance (raised as the step's
            error on every attempt, so retries and failure handling run as usual), or a
            callable (called instead of the step's function, with its arguments; it may be
            `async` in an `async def` function).
        now: The fake clock's starting time (aware); default 2026-01-01 00:00 UTC.
        dry_run: Start a dry run (`ctx.dry_run`; `step.send_event` records, sends nothing).

    Raises:
        ConfigurationError: Both `event` and `data` given, or the event started no run.
        InvalidInput: The event is invalid, or `now` is a naive datetime.
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(
        self,
        fn: Function,
        *,
        event: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        mocks: Mapping[str, Any] | None = None,
        now: datetime | None = None,
        dry_run: bool = False,
    ) -> None:
        if event is not None and data is not None:
            raise errors.ConfigurationError("give event or data, not both")
        self.clock = FakeClock(None if now is None else require_aware(now, field="now"))
        self._mocks = _Mocks(mocks or {})
        self._fn = _with_mocks(fn, self._mocks)
        self._dir = Path(tempfile.mkdtemp(prefix="stepline-test-"))
        try:
            self._store = open_store(self._dir / "stepline.db")
            self._store.upgrade()
            self._operations = Operations(self._store, self.clock)
            self._outputs = Outputs(self._store)  # a large output is read from the blob store
            self._executor = Executor(
                store=self._store,
                functions={self._fn.id: self._fn},
                clock=self.clock,
                routing=self._operations.routing,
                policy=RETRY_POLICY,
                rng=random.random,
            )
            self._register()
            self.run_id = self._start(event, data, dry_run)
            self._drive()
        except BaseException:
            self.close()
            raise

    @property
    def result(self) -> RunResult:
        """The run as stored now."""
        return self._result()

    @property
    def unused_mocks(self) -> list[str]:
        """The mocked step ids no `step.run` has reached so far (a typo, or a path not taken)."""
        return self._mocks.unused

    def advance(self, by: Duration | None = None) -> RunResult:
        """Move the clock forward, executing whatever falls due on the way.

        Args:
            by: How far ("30s", "10m", a timedelta or seconds); None moves to the next
                wake-up (the end of a sleep, a retry's backoff, a wait's timeout).

        Raises:
            ConfigurationError: `by` is None and nothing is due to wake up.
        """
        if by is None:
            due = self._next_due()
            if due is None:
                raise errors.ConfigurationError(f"run {self.run_id}: nothing is due to wake up")
            target = max(due, self.clock.now())
        else:
            target = self.clock.now() + parse_duration(by, field="by")
        while (due := self._next_due()) is not None and due <= target:
            at_due = due <= self.clock.now()
            self.clock.set(max(due, self.clock.now()))
            if not self._drive() and at_due:
                break  # due but not claimable (e.g. a concurrency key held elsewhere)
        self.clock.set(target)
        self._drive()
        return self._result()

    def send(self, event: Mapping[str, Any]) -> RunResult:
        """Send an event (`{name, data, ...}`) now, e.g. the one a waiting run expects."""
        self._operations.send(dict(event))
        self._drive()
        return self._result()

    def finish(self) -> RunResult:
        """Advance wake-up by wake-up until the run ends; a wait for an event times out.

        Raises:
            ConfigurationError: The run is parked with nothing due, or still active after
                `MAX_WAKES` wake-ups.
        """
        for _ in range(MAX_WAKES):
            result = self._result()
            if result.ended:
                return result
            self.advance()
        raise errors.ConfigurationError(f"run {self.run_id} did not end after {MAX_WAKES} wake-ups")

    def close(self) -> None:
        """Close and delete the throwaway store."""
        store = getattr(self, "_store", None)
        if store is not None:
            store.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> TestRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- driving -------------------------------------------------------------------------------

    def _register(self) -> None:
        fn = self._fn
        record = FunctionRecord(id=fn.id, app_id=fn.app_id, name=fn.name, config=fn.config())
        self._store.sync_functions(fn.app_id, [record], self.clock.now())

    def _start(
        self, event: Mapping[str, Any] | None, data: Mapping[str, Any] | None, dry_run: bool
    ) -> str:
        """Start the run (a dry run if asked); its id."""
        if event is None:
            return self._operations.invoke(self._fn.id, dict(data or {}), dry_run=dry_run)
        if dry_run:
            event = {**event, "data": {**(event.get("data") or {}), DRY_RUN_KEY: True}}
        [event_id] = self._operations.send(dict(event))
        runs = [
            run
            for run in self._operations.runs_for_event(event_id)
            if run.function_id == self._fn.id
        ]
        if not runs:
            name = event.get("name")
            raise errors.ConfigurationError(
                f"event {name!r} started no run of {self._fn.id!r}: it matches none of the "
                "function's triggers"
            )
        return runs[0].id

    def _drive(self) -> int:
        """Execute every run due now, one at a time, until none is; how many replays ran."""
        for replays in range(MAX_REPLAYS):
            now = self.clock.now()
            self._store.fail_timed_out_runs(now, self._operations.routing)
            claimed = self._store.claim_runs(WORKER_ID, 1, now, LEASE_SECONDS, [self._fn.id])
            if not claimed:
                return replays
            if self._fn.is_async:
                run_to_end(self._executor.execute_async(claimed[0]))
            else:
                self._executor.execute(claimed[0])
        raise errors.ConfigurationError(
            f"{MAX_REPLAYS} replays and runs of {self._fn.id!r} are still due; "
            "does the function trigger itself?"
        )

    def _next_due(self) -> datetime | None:
        return self._store.next_due_at([self._fn.id])

    def _result(self) -> RunResult:
        detail = self._operations.run_detail(self.run_id)
        run = detail.run
        return RunResult(
            run_id=run.id,
            status=run.status,
            detail=run.detail,
            output=self._outputs.value(run.output),
            error=_decoded(run.error),
            steps={step.id: self._step_result(step) for step in detail.steps},
            logs=[
                LogLine(level=log.level, message=log.message, step_id=log.step_id)
                for log in detail.logs
            ],
            counters=json.loads(run.counters),
            sent_events=self._sent_events(detail.steps),
        )

    def _sent_events(self, steps: list[StepRecord]) -> list[dict[str, Any]]:
        ids = [
            event_id
            for step in steps
            if step.kind == "send_event" and step.output is not None
            for event_id in self._outputs.value(step.output)
        ]
        return [event.payload() for event in self._store.get_events(ids)]

    def _step_result(self, step: StepRecord) -> StepResult:
        return StepResult(
            id=step.id,
            kind=step.kind,
            status=step.status,
            output=self._outputs.value(step.output),
            error=_decoded(step.error),
            attempts=step.attempts,
        )


def run_function(
    fn: Function,
    event: Mapping[str, Any] | None = None,
    *,
    data: Mapping[str, Any] | None = None,
    mocks: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> RunResult:
    """Run `fn` to its end and return how it ended; see `TestRun` for the arguments.

    The fake clock jumps to each wake-up in turn: sleeps end, retries happen after their
    backoff, and a wait for an event times out (returns None). A failed run is a result too:
    check `status` and `error`.

    Raises:
        ConfigurationError: The run completed without reaching a mocked step id (a typo in
            the id, most likely); see also `TestRun`'s own errors.
    """
    with TestRun(fn, event=event, data=data, mocks=mocks, now=now, dry_run=dry_run) as run:
        result = run.finish()
        if result.status == "COMPLETED" and run.unused_mocks:
            raise errors.ConfigurationError(
                f"run {result.run_id} completed without reaching the mocked step(s) "
                f"{', '.join(map(repr, run.unused_mocks))}; check the ids (a mock for a path "
                "the run may not take belongs in a TestRun)"
            )
        return result


# -- mocks ---------------------------------------------------------------------------------------


class _Mocks:
    """The mocks of one test run, and which of them a `step.run` has reached."""

    def __init__(self, mocks: Mapping[str, Any]) -> None:
        self._mocks = dict(mocks)
        self.used: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self._mocks)

    @property
    def unused(self) -> list[str]:
        """Mocked ids no `step.run` has reached, sorted."""
        return sorted(set(self._mocks) - self.used)

    def stand_in(self, step_id: str, fn: Callable[..., T]) -> Callable[..., T]:
        """What the step `step_id` calls: its mock's stand-in, else `fn` itself."""
        if step_id not in self._mocks:
            return fn
        self.used.add(step_id)
        mock = self._mocks[step_id]
        if isinstance(mock, BaseException):

            def fail(*args: Any, **kwargs: Any) -> Any:
                raise mock

            return fail
        if callable(mock):
            return mock  # type: ignore[no-any-return]

        def value(*args: Any, **kwargs: Any) -> Any:
            return mock

        return value


def _with_mocks(fn: Function, mocks: _Mocks) -> Function:
    """`fn` with its `ctx.step` swapped for one that applies `mocks` (fn itself if none)."""
    if not mocks:
        return fn
    handler = fn.handler
    if fn.is_async:

        async def mocked_async(ctx: Any) -> Any:
            ctx.step = _MockedAsyncStep(ctx.step, mocks)
            return await handler(ctx)

        return replace(fn, handler=mocked_async)

    def mocked(ctx: Any) -> Any:
        ctx.step = _MockedStep(ctx.step, mocks)
        return handler(ctx)

    return replace(fn, handler=mocked)


class _MockedStep(Step):
    """`ctx.step` of a `def` function under test: `run` calls the mock for a mocked id.

    Steps built on `run` take the mocks too; every other step is the engine's own.
    """

    def __init__(self, inner: Step, mocks: _Mocks) -> None:
        super().__init__(inner._backend)  # the same run's backend; only `run` differs
        self._mocks = mocks

    def run(self, step_id: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`Step.run`, calling the mock instead of `fn` if `step_id` is mocked."""
        return super().run(step_id, self._mocks.stand_in(step_id, fn), *args, **kwargs)


class _MockedAsyncStep(AsyncStep):
    """`ctx.step` of an `async def` function under test; see `_MockedStep`."""

    def __init__(self, inner: AsyncStep, mocks: _Mocks) -> None:
        super().__init__(inner._backend)
        self._mocks = mocks

    async def run(self, step_id: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`AsyncStep.run`, calling the mock instead of `fn` if `step_id` is mocked."""
        return await super().run(step_id, self._mocks.stand_in(step_id, fn), *args, **kwargs)


def _decoded(text: str | None) -> Any:
    return None if text is None else json.loads(text)

"""Drive one claimed run: replay the function from the top and commit how it ended.

This is the in-process driver: it calls Python functions registered on an `App`. `def`
functions run in the caller's (pool) thread; `async def` functions are awaited on the worker's
event loop, reaching the store through a thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from stepline import errors
from stepline.engine import tracing
from stepline.engine.clock import Clock
from stepline.engine.ending import COMPLETED, LOST, Ending
from stepline.engine.inngest.driver import HttpDriver
from stepline.engine.metrics import Metrics
from stepline.engine.outputs import FUNCTION_RESULT, OutputLimits, Outputs
from stepline.engine.retry import RetryPolicy, describe, next_attempt_at
from stepline.engine.routing import Routing
from stepline.engine.run_trigger import run_trigger
from stepline.engine.session import BranchDone, Lost, Parked, Restart, RunSession
from stepline.sdk.app import Function
from stepline.sdk.context import CancelFlag, Context
from stepline.sdk.event import Event
from stepline.sdk.step import AsyncStep, Step, encode_output
from stepline.store.base import ClaimedRun, NewAttempt, Store

logger = logging.getLogger("stepline.executor")
_NO_SDK_FUNCTIONS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """How one replay ended: the user function's value, or what it raised."""

    value: Any = None
    error: BaseException | None = None


@dataclass(kw_only=True)
class Executor:
    """Replays claimed runs of the given functions and commits their outcome.

    Once `draining` is set (the worker is stopping), replays start no new step: each hands its
    run back to the queue at the next `step.run` instead. Once a replay's `lost` flag is set
    (the worker found its lease gone), it starts no new step either: it ends with `Lost`.
    Step attempts are counted in `metrics` (in memory) once committed.
    """

    store: Store
    functions: Mapping[str, Function]
    clock: Clock
    routing: Routing
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    rng: Callable[[], float] = random.random
    draining: threading.Event = field(default_factory=threading.Event)
    http: HttpDriver | None = None
    metrics: Metrics | None = None
    output_limits: OutputLimits = field(default_factory=OutputLimits)
    _outputs: Outputs = field(init=False, repr=False)
    _ids: tuple[Mapping[str, Any] | None, list[str]] = field(
        default=(None, []), init=False, repr=False
    )
    # The replays in progress here, by run id (the heartbeat records their steps in flight).
    _sessions: dict[str, RunSession] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._outputs = Outputs(self.store, self.output_limits, self.clock)

    def function_ids(self) -> list[str]:
        """The functions whose runs this executor takes: its Python ones and SDK apps' ones.

        Reads the registry for SDK functions when its copy is stale (may raise `StoreError`);
        the list is built again only when that copy changed (a worker asks at every claim).
        """
        sdk = self.http.functions.current() if self.http is not None else _NO_SDK_FUNCTIONS
        seen, ids = self._ids
        if sdk is not seen:
            ids = sorted({*self.functions, *sdk})
            self._ids = (sdk, ids)
        return ids

    def _session(
        self, claimed: ClaimedRun, lost: threading.Event | None
    ) -> tuple[Function, RunSession]:
        fn = self.functions[claimed.run.function_id]
        session = RunSession(
            claimed,
            max_attempts=fn.max_attempts,
            store=self.store,
            clock=self.clock,
            routing=self.routing,
            policy=self.policy,
            rng=self.rng,
            draining=self.draining,
            lost=lost,
            function_config=fn.config,
            metrics=self.metrics,
            outputs=self._outputs,
        )
        self._sessions[claimed.run.id] = session
        return fn, session

    def steps_in_flight(self, run_ids: Sequence[str]) -> dict[str, tuple[str, datetime]]:
        """Per run of `run_ids` replaying here in a step: that step's id and start."""
        found = {run_id: self._sessions.get(run_id) for run_id in run_ids}
        return {
            run_id: session.in_flight
            for run_id, session in found.items()
            if session is not None and session.in_flight is not None
        }

    def _context(self, claimed: ClaimedRun, session: RunSession, step: Any) -> Context[Any]:
        events = tuple(Event.of(event.payload()) for event in claimed.events)
        kind, by = claimed.origin  # a parallel branch's is its parent run's
        return Context(
            events=events,
            run_id=session.steps_run_id,  # a parallel branch is part of its parent's run
            attempt=claimed.run.attempt,
            step=step,
            hooks=session,
            cancelled=CancelFlag(session.lost_flag),  # the worker sets it once the lease is gone
            dry_run=claimed.run.dry_run,
            trigger=run_trigger(kind, by, events),
        )

    def execute(self, claimed: ClaimedRun, lost: threading.Event | None = None) -> Ending | None:
        """Replay a `def` function's run in this thread; how it ended (None: parked)."""
        fn, session = self._session(claimed, lost)
        ctx = self._context(claimed, session, Step(session))
        try:
            try:
                outcome = Outcome(value=fn.handler(ctx))
            except Exception as exc:
                outcome = Outcome(error=exc)
            except (Parked, Restart, Lost, BranchDone) as signal:
                outcome = Outcome(error=signal)
            return self._settle(fn, session, outcome)
        finally:
            self._sessions.pop(claimed.run.id, None)

    async def execute_async(
        self, claimed: ClaimedRun, lost: threading.Event | None = None
    ) -> Ending | None:
        """Replay an `async def` function's run on the running event loop (as `execute`).

        The worker cancels the task once it found the lease gone (after setting `lost`): the
        `CancelledError` unwinds user code, and the replay ends without committing anything.
        """
        if claimed.run.function_id not in self.functions and self.http is not None:
            return await self.http.execute(claimed, lost)  # an SDK app's function, over HTTP
        fn, session = self._session(claimed, lost)
        ctx = self._context(claimed, session, AsyncStep(session))
        try:
            try:
                outcome = Outcome(value=await fn.handler(ctx))
            except Exception as exc:
                outcome = Outcome(error=exc)
            except (Parked, Restart, Lost, BranchDone) as signal:
                outcome = Outcome(error=signal)
            return await asyncio.to_thread(self._settle, fn, session, outcome)
        finally:
            self._sessions.pop(claimed.run.id, None)

    def _settle(self, fn: Function, session: RunSession, outcome: Outcome) -> Ending | None:
        """Commit the outcome; a lost lease means someone else (or a cancel) owns the run now.

        The worker says why the lease was lost (it knows a cancel from a takeover).
        """
        try:
            ending = self._commit_outcome(fn, session, outcome)
            tracing.run_ended(session.trace, session.run, ending, self.clock.now())
            return ending
        except errors.LeaseLost as exc:
            logger.debug("run %s: %s", session.run.id, exc)
            return LOST
        except errors.StoreUnavailable as exc:
            logger.warning(
                "run %s: outcome not saved (%s); it is replayed when its lease expires",
                session.run.id,
                exc,
            )
            return None

    def _commit_outcome(self, fn: Function, session: RunSession, outcome: Outcome) -> Ending | None:
        # A signal the user's code swallowed (`except BaseException`) still ends the replay.
        error = outcome.error if session.halted is None else session.halted
        if session.lost and not isinstance(error, Parked):
            raise errors.LeaseLost(f"run {session.run.id} is no longer leased by this worker")
        now = self.clock.now()
        if self._signalled(session, error, now):
            return None
        if isinstance(error, BranchDone):  # a parallel branch ends with its branch's result
            outcome = Outcome(value=error.value)
            error = None
        if error is None:
            try:
                output = self._outputs.stored(
                    FUNCTION_RESULT, encode_output(FUNCTION_RESULT, outcome.value)
                )
            except errors.StepOutputError as exc:
                error = exc
            else:
                self.store.finish_run(
                    session.lease,
                    "COMPLETED",
                    session.take_delta(),
                    now,
                    output=output,
                    routing=self.routing,
                )
                return COMPLETED
        return self._failed(fn, session, error, now)

    def _signalled(self, session: RunSession, error: BaseException | None, now: datetime) -> bool:
        """Handle an engine signal that ended the replay; False if there was none."""
        if isinstance(error, Parked):
            return True
        if isinstance(error, Restart):
            self.store.park_run(session.lease, now, session.take_delta(), now, detail=None)
            return True
        if isinstance(error, Lost):
            raise errors.LeaseLost(str(error))
        if isinstance(error, errors.LeaseLost):
            raise error
        return False

    def _failed(
        self, fn: Function, session: RunSession, error: BaseException, now: datetime
    ) -> Ending | None:
        """Fail the run (a step failed for good, attempts ran out) or park it for a retry."""
        lease = session.lease
        described = json.dumps(describe(error))
        if isinstance(error, errors.StepError):
            self.store.finish_run(
                lease, "FAILED", session.take_delta(), now, error=described, routing=self.routing
            )
            return Ending(status="FAILED", error=described)
        attempt = session.run.attempt
        retry_at = next_attempt_at(error, attempt, fn.max_attempts, now, self.policy, self.rng)
        record = NewAttempt(
            step_hash="",
            step_id=None,
            attempt=attempt,
            error=described,
            started_at=session.began,
            retry_at=retry_at,
        )
        if retry_at is not None:
            session.forget_retried_work()
        delta = session.take_delta()
        if retry_at is None:
            self.store.finish_run(
                lease,
                "FAILED",
                delta,
                now,
                error=described,
                attempt=record,
                routing=self.routing,
            )
            return Ending(status="FAILED", error=described)
        self.store.park_run(lease, retry_at, delta, now, detail="RETRYING", attempt=record)
        return None

"""Turn an SDK app's answers for one claimed run into store writes (protocol §7.4-7.8).

Attempts are counted per request, as Inngest does: a step's own failures count against it
(a discovery request that ran the step, or the targeted request of a planned step), an error
outside steps against the run. A run that is a parallel branch stands for one planned step
of its parent: it ends with that step's result, which settles the parent's step.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stepline import errors
from stepline.engine import tracing
from stepline.engine.clock import Clock
from stepline.engine.ending import Ending
from stepline.engine.inngest.call import DISCOVERY
from stepline.engine.inngest.fanout import Fanout
from stepline.engine.inngest.reply import LAZY_OPS, Op, Reply
from stepline.engine.metrics import Metrics, StepOutcome
from stepline.engine.outputs import FUNCTION_RESULT, Outputs
from stepline.engine.retry import RetryPolicy
from stepline.engine.routing import Routing
from stepline.store.base import (
    ClaimedRun,
    NewAttempt,
    RunDelta,
    StepKind,
    StepRecord,
    StepStatus,
    Store,
)

_RAN = ("StepRun", "Step")
_ERRORED = ("StepError", "StepFailed")
_OUTCOMES = (*_RAN, *_ERRORED)


def error_body(reply: Reply) -> str:
    """A failed answer's body as stored (verbatim when it is a JSON object)."""
    try:
        value = json.loads(reply.body)
    except ValueError:
        value = None
    if isinstance(value, dict):
        return reply.body
    message = reply.body.strip()[:2000] or f"HTTP {reply.status}"
    return json.dumps({"name": "Error", "message": message, "status": reply.status})


@dataclass(kw_only=True)
class Writer:
    """The store side of one claimed run of an SDK function."""

    claimed: ClaimedRun
    store: Store
    clock: Clock
    routing: Routing
    policy: RetryPolicy
    rng: Callable[[], float]
    max_attempts: int
    config: str
    outputs: Outputs
    metrics: Metrics | None = None
    steps: dict[str, StepRecord] = field(init=False)
    failures: dict[str, int] = field(init=False)
    ending: Ending | None = field(init=False, default=None)  # once it ended the run
    trace: tracing.RunTrace | None = field(init=False)  # None: tracing is off

    def __post_init__(self) -> None:
        self.steps = {step.hash: step for step in self.claimed.steps}
        self.failures = dict(self.claimed.step_failures)
        self.trace = tracing.run_trace(self.claimed.run, self.claimed.events)

    @property
    def run_id(self) -> str:
        """The claimed run's id."""
        return self.claimed.run.id

    @property
    def branch(self) -> str | None:
        """The planned step this run executes, if it is a parallel branch."""
        run = self.claimed.run
        return run.parent_step if run.trigger_kind == "parallel" else None

    @property
    def steps_run_id(self) -> str:
        """The run whose steps these are (a branch's are its parent's); the SDK's run id."""
        run = self.claimed.run
        return (run.parent_run_id or run.id) if self.branch else run.id

    def attempt_for(self, step_id: str) -> int:
        """The attempt number of this request: the step's failures, or the run's."""
        if step_id != DISCOVERY:
            return self.failures.get(step_id, 0)
        retried = [n for h, n in self.failures.items() if h not in self.steps]
        return max(retried) if retried else self.claimed.run.attempt

    # -- answers -------------------------------------------------------------------------------

    def handle(self, reply: Reply, step_id: str, started: datetime) -> str | None:
        """Write what the answer means; the next request's step id, or None when parked/ended."""
        if reply.status == 200:
            return self._finished(reply, step_id, started)
        if reply.status != 206:
            failure = json.loads(error_body(reply))
            return self.attempt_failed(step_id, failure, reply, started)
        ops = [op for op in reply.ops if op.op not in LAZY_OPS]
        if step_id != DISCOVERY:
            mine = [op for op in ops if op.id == step_id and op.op in _OUTCOMES]
            if not mine:
                missing = {"name": "StepNotFound", "message": f"the app did not run step {step_id}"}
                return self.attempt_failed(step_id, missing, reply, started)
            return self._outcome(mine[0], reply, started)
        if len(ops) == 1:
            return self._single(ops[0], reply, started)
        if not ops:
            nothing = {"name": "NothingToDo", "message": "the app reported no step and no result"}
            return self.attempt_failed(step_id, nothing, reply, started)
        return self._fan_out(ops, reply, started)

    def _finished(self, reply: Reply, step_id: str, started: datetime) -> str | None:
        if self.branch is not None:
            wrong = {
                "name": "StepNotFound",
                "message": f"the app finished the function instead of running step {step_id}",
            }
            return self.attempt_failed(step_id, wrong, reply, started)
        output = reply.body if reply.body.strip() else "null"
        try:
            json.loads(output)
        except ValueError:
            bad = {"name": "BadResult", "message": "the function's result is not JSON"}
            return self.attempt_failed(step_id, bad, reply, started)
        self._complete(output)
        return None

    def _complete(self, output: str) -> None:
        """End the run with the function's result (a blob when large); fail it when too large."""
        try:
            stored = self.outputs.stored(FUNCTION_RESULT, output)
        except errors.StepOutputError as exc:
            too_big = {"name": "StepOutputTooLarge", "message": str(exc)}
            self._finish("FAILED", error=json.dumps(too_big))
            return
        self._finish("COMPLETED", output=stored)

    def _single(self, op: Op, reply: Reply, started: datetime) -> str | None:
        if op.op in _OUTCOMES:
            return self._outcome(op, reply, started)
        if op.op == "StepPlanned" and op.id not in self.steps:
            return op.id  # one planned step: run it now, in this claim
        if op.op == "RunComplete":
            self._complete(_json(op.data))
            return None
        if op.op == "DiscoveryRequest":
            return DISCOVERY
        return self._fan_out([op], reply, started)

    def _outcome(self, op: Op, reply: Reply, started: datetime) -> str | None:
        """A step the app ran: commit it (or end the branch with it), or retry it."""
        known = self.steps.get(op.id)
        if known is not None and known.status in ("completed", "failed"):
            again = {"name": "StepRunTwice", "message": f"the app ran finished step {op.label!r}"}
            return self.attempt_failed(DISCOVERY, again, reply, started)
        if op.op in _RAN:
            try:
                output = self.outputs.stored(op.label, _json(op.data))
            except errors.StepOutputError as exc:
                too_big = {"name": "StepOutputTooLarge", "message": str(exc)}
                return self._step_failed(op, too_big, started, final=True)
            if self.branch is not None:
                self._finish("COMPLETED", output=output)
            else:
                self._commit(self._record(op, "run", "completed", started, output=output))
            self._count_attempt("completed", started, op)
            return None if self.branch is not None else DISCOVERY
        error = op.error or {"name": "Error", "message": f"step {op.label!r} failed"}
        final = op.op == "StepFailed" or reply.no_retry
        return self._step_failed(op, error, started, final=final, retry_at=reply.retry_at)

    def _step_failed(
        self,
        op: Op,
        error: dict[str, Any],
        started: datetime,
        *,
        final: bool,
        retry_at: datetime | None = None,
    ) -> str | None:
        attempt = self.failures.get(op.id, 0)
        now = self.clock.now()
        if not final and attempt + 1 < self.max_attempts:
            retry_at = retry_at or now + self.policy.delay(attempt, self.rng)
        else:
            retry_at = None
        described = json.dumps(error)
        record = NewAttempt(
            step_hash=op.id,
            step_id=op.label,
            attempt=attempt,
            error=described,
            started_at=started,
            retry_at=retry_at,
        )
        if retry_at is not None:
            self.store.park_run(
                self.claimed.lease, retry_at, RunDelta(), now, detail="RETRYING", attempt=record
            )
            self._count_attempt("retried", started, op, error)
            return None
        if self.branch is not None:
            self._finish("FAILED", error=described, attempt=record)
        else:
            self._commit(
                self._record(op, "run", "failed", started, error=described), attempt=record
            )
        self._count_attempt("failed", started, op, error)
        return None if self.branch is not None else DISCOVERY

    def _count_attempt(
        self, outcome: StepOutcome, started: datetime, op: Op, error: dict[str, Any] | None = None
    ) -> None:
        """Count a step attempt the app reported, once committed (in memory); trace it."""
        now = self.clock.now()
        if self.metrics is not None:
            seconds = (now - started).total_seconds()
            self.metrics.step_attempt(self.claimed.run.function_id, outcome, seconds)
        attempt = self.failures.get(op.id, 0) + 1
        tracing.reported_attempt(self.trace, op.label, attempt, outcome, error, started, now)

    def _fan_out(self, ops: list[Op], reply: Reply, started: datetime) -> str | None:
        """Several ops (or one async op): commit the finished ones, park on the rest."""
        fanout = Fanout(writer=self, now=self.clock.now())
        for op in ops:
            if op.id in self.steps:
                continue  # planned or finished already (SDKs repeat in-flight steps)
            if op.op in _OUTCOMES:
                if self._outcome(op, reply, started) is None:
                    return None
            else:
                fanout.add(op)
        return fanout.park()

    def attempt_failed(
        self, step_id: str, failure: dict[str, Any], reply: Reply | None, started: datetime
    ) -> str | None:
        """This request failed as a whole (error answer, bad answer, no answer): retry or fail.

        Returns None: the run is parked for the retry, or has ended.
        """
        targeted = step_id != DISCOVERY
        # Outside steps, the run's own attempts count (a step's count against the step).
        attempt = self.failures.get(step_id, 0) if targeted else self.claimed.run.attempt
        now = self.clock.now()
        retry_at: datetime | None = None
        if not (reply is not None and reply.no_retry) and attempt + 1 < self.max_attempts:
            fallback = now + self.policy.delay(attempt, self.rng)
            retry_at = reply.retry_at if reply is not None and reply.retry_at else fallback
        described = json.dumps(failure)
        record = NewAttempt(
            step_hash=step_id if targeted else "",
            step_id=self._label(step_id) if targeted else None,
            attempt=attempt,
            error=described,
            started_at=started,
            retry_at=retry_at,
        )
        if retry_at is None:
            self._finish("FAILED", error=described, attempt=record)
        else:
            self.store.park_run(
                self.claimed.lease, retry_at, RunDelta(), now, detail="RETRYING", attempt=record
            )
        return None

    def give_up(self, message: str) -> None:
        """End the run as failed without calling the app (its function is gone)."""
        self._finish("FAILED", error=json.dumps({"name": "FunctionNotFound", "message": message}))

    def hand_back(self) -> None:
        """Give the run back to the queue, due now (the worker is stopping)."""
        now = self.clock.now()
        self.store.park_run(self.claimed.lease, now, RunDelta(), now, detail=None)

    # -- writes --------------------------------------------------------------------------------

    def _label(self, step_hash: str) -> str:
        step = self.steps.get(step_hash)
        return step.id if step is not None else step_hash

    def _record(
        self,
        op: Op,
        kind: StepKind,
        status: StepStatus,
        started: datetime,
        *,
        output: str | None = None,
        error: str | None = None,
        wake_at: datetime | None = None,
    ) -> StepRecord:
        pending = status in ("sleeping", "waiting")
        known = self.steps.get(op.id)
        return StepRecord(
            run_id=self.steps_run_id,
            hash=op.id,
            id=op.label,
            kind=kind,
            status=status,
            position=known.position if known else len(self.steps),
            started_at=known.started_at if known else started,
            ended_at=None if pending else self.clock.now(),
            output=output,
            error=error,
            attempts=self.failures.get(op.id, 0) + 1,
            wake_at=wake_at,
        )

    def _commit(
        self, step: StepRecord, *, attempt: NewAttempt | None = None, consume_wait: bool = False
    ) -> None:
        self.store.commit_step(
            self.claimed.lease,
            step,
            RunDelta(),
            self.clock.now(),
            routing=self.routing,
            attempt=attempt,
            consume_wait=consume_wait,
        )
        self.steps[step.hash] = step

    def _finish(
        self,
        status: Any,
        *,
        output: str | None = None,
        error: str | None = None,
        attempt: NewAttempt | None = None,
    ) -> None:
        self.store.finish_run(
            self.claimed.lease,
            status,
            RunDelta(),
            self.clock.now(),
            output=output,
            error=error,
            attempt=attempt,
            routing=self.routing,
        )
        self.ending = Ending(status=status, error=error)

    def park_all(self, until: datetime, detail: str, **writes: Any) -> None:
        """Park the run on several steps at once (see `Fanout`)."""
        self.store.park_run(
            self.claimed.lease,
            until,
            RunDelta(),
            self.clock.now(),
            detail=detail,
            routing=self.routing,
            **writes,
        )

    def commit(self, step: StepRecord, *, consume_wait: bool = False) -> bool:
        """Commit a finished step; False if it was settled meanwhile (an event, a child run)."""
        try:
            self._commit(step, consume_wait=consume_wait)
        except errors.Conflict:
            return False
        return True

    def record(self, op: Op, kind: StepKind, status: StepStatus, **values: Any) -> StepRecord:
        """A step record for `op` (see `Fanout`)."""
        return self._record(op, kind, status, self.clock.now(), **values)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))

"""How a run ends, whoever ends it: in one transaction with everything that follows from it.

A worker finishing it, a cancel (API, `cancel_on`, singleton), a timeout: each goes through
`_after_end`, in the transaction that ends the run, so each of these happens exactly once:

- the run that started it by a step (`step.invoke`) has that step settled and is made due;
- the lifecycle events are stored and routed: `stepline/function.failed` or
  `stepline/function.cancelled`, and `stepline/function.finished` when a function or a wait
  listens for it (stored for every run it would double the event table's writes). A run
  started by a failed or finished event emits no failed or finished event (no loops).

A run ended by anyone but its worker (`_end_run`) is reported to the end listeners once the
transaction commits, and on PostgreSQL to other processes (NOTIFY): a worker still executing
it stops it then, not at its next heartbeat.

Lock order: the parent's queue row, then the run's own (workers hold theirs already).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, bindparam, delete, func, select, update

from stepline.store import schema as t
from stepline.store._prepared import Prepared, RawTransaction
from stepline.store.base import (
    ACTIVE_STATUSES,
    CANCELLED_EVENT,
    FAILED_EVENT,
    FINISHED_EVENT,
    EventRecord,
    EventRouting,
    RunEnd,
    RunStatus,
)

if TYPE_CHECKING:
    from stepline.store._internals import StoreInternals

_LIFECYCLE: dict[str, tuple[str, ...]] = {
    "COMPLETED": (FINISHED_EVENT,),
    "FAILED": (FAILED_EVENT, FINISHED_EVENT),
    "CANCELLED": (CANCELLED_EVENT, FINISHED_EVENT),
}
_NO_LOOPS = (FAILED_EVENT, FINISHED_EVENT)
ENDED_COLUMNS = (
    t.runs.c.id,
    t.runs.c.function_id,
    t.runs.c.status,
    t.runs.c.output,
    t.runs.c.error,
    t.runs.c.event_ids,
    t.runs.c.parent_run_id,
    t.runs.c.parent_step,
    t.runs.c.reason,
    t.runs.c.trigger_kind,
)


class EndingStatements:
    """The statements of ending runs, compiled once per store."""

    def __init__(self, prepare: Callable[..., Prepared]) -> None:
        r, q, s = t.runs.c, t.queue.c, t.steps.c
        run_id = bindparam("run_id", type_=String)
        self.parent_of = prepare(select(r.parent_run_id).where(r.id == run_id))
        self.drop_queue = prepare(delete(t.queue).where(q.run_id == run_id))
        self.end_active = prepare(
            update(t.runs)
            .where(r.id == run_id, r.status.in_(ACTIVE_STATUSES))
            .values(detail=None)
            .returning(*ENDED_COLUMNS),
            [
                "status",
                "ended_at",
                "error",
                "reason",
                "cancelled_by",
                "cancel_requested_by",
                "cancel_reason",
            ],
        )
        self.delete_listeners = prepare(
            delete(t.cancel_listeners).where(t.cancel_listeners.c.run_id == run_id)
        )
        # The steps a parent still waits for, besides the group step of a `step.parallel`:
        # its branches, or an SDK app's planned steps, sleeps, waits and invokes.
        self.waiting_branches = prepare(
            select(func.count()).where(
                s.run_id == run_id,
                s.kind != "parallel",
                s.status.in_(("waiting", "sleeping")),
            )
        )
        self.settle_group = prepare(
            update(t.steps)
            .where(s.run_id == run_id, s.kind == "parallel", s.status == "waiting")
            .values(status="completed", ended_at=bindparam("ended_at"))
        )
        self.active_branches = prepare(
            select(r.id).where(
                r.parent_run_id == run_id,
                r.trigger_kind == "parallel",
                r.status.in_(ACTIVE_STATUSES),
            )
        )
        self.settle_parent_step = prepare(
            update(t.steps).where(
                s.run_id == run_id, s.hash == bindparam("step_hash"), s.status == "waiting"
            ),
            ["status", "output", "error", "ended_at"],
        )


def _child_outcome(ended: RunEnd) -> tuple[str, str | None, str | None]:
    """(step status, output, error) for the parent's step from how its child run ended."""
    if ended.status == "COMPLETED":
        return "completed", ended.output or "null", None
    if ended.status == "FAILED" and ended.trigger_kind == "parallel":
        return "failed", None, ended.error  # a branch fails as its step failed
    failure: dict[str, Any]
    if ended.status == "FAILED":
        error = json.loads(ended.error or "{}")
        message = f"run {ended.run_id} failed: {error.get('message', '')}"
        # `cause`: the child's own error, which an SDK app's invoke step sees (as on Inngest).
        failure = {"name": error.get("name", "Error"), "message": message, "cause": error}
    else:
        name = "Cancelled" if ended.status == "CANCELLED" else "Skipped"
        message = f"run {ended.run_id} was {ended.status.lower()}"
        if ended.reason:
            message += f" ({ended.reason})"
        failure = {"name": name, "message": message}
    return "failed", None, json.dumps({**failure, "traceback": ""})


class EndingsMixin:
    """`SqlStore`'s run endings (see the module docstring)."""

    def _end_run(
        self: StoreInternals,
        tx: RawTransaction,
        run_id: str,
        status: RunStatus,
        now: datetime,
        routing: EventRouting,
        *,
        reason: str | None = None,
        cancelled_by: str | None = None,
        error: str | None = None,
        requested_by: str | None = None,
        request_reason: str | None = None,
    ) -> bool:
        """End an active run not held by this caller (cancel, timeout); False if it had ended.

        A cancel by request records who asked (`requested_by`) and the reason they gave.
        """
        ends = self._endings
        parent = tx.scalars(ends.parent_of, run_id=run_id)
        if parent and parent[0]:
            tx.first(self._sql.lock_queue_item, run_id=parent[0])
        tx.first(self._sql.lock_queue_item, run_id=run_id)
        tx.execute(ends.drop_queue, run_id=run_id)
        row = tx.first(
            ends.end_active,
            run_id=run_id,
            status=status,
            ended_at=now.timestamp(),
            error=error,
            reason=reason,
            cancelled_by=cancelled_by,
            cancel_requested_by=requested_by,
            cancel_reason=request_reason,
        )
        if row is None:
            return False
        ended = RunEnd.from_row(row)
        self._ended(tx, ended)  # a worker executing it stops it at commit
        tx.execute(self._sql.delete_waits, run_id=run_id)
        tx.execute(ends.delete_listeners, run_id=run_id)
        self._after_end(tx, ended, now, routing)
        for branch in tx.scalars(ends.active_branches, run_id=run_id):
            reason = f"its run {run_id} ended ({status.lower()})"
            self._end_run(tx, branch, "CANCELLED", now, routing, reason=reason)
        return True

    def _after_end(
        self: StoreInternals,
        tx: RawTransaction,
        ended: RunEnd,
        now: datetime,
        routing: EventRouting,
        *,
        finished_listened: bool | None = None,
    ) -> None:
        """Settle the parent's step and emit the lifecycle events (see the module docstring).

        `finished_listened`: whether `stepline/function.finished` has a listener, when the
        caller knows already (a worker's finish reads it with the run's end, in one trip).
        """
        if ended.parent_run_id is not None and ended.parent_step is not None:
            self._settle_parent(tx, ended, now)
        names = [
            name
            for name in _LIFECYCLE.get(ended.status, ())
            if name != FINISHED_EVENT
            or (
                finished_listened
                if finished_listened is not None
                else self._listened(tx, name, routing)
            )
        ]
        if not names:
            return
        events = self._events_by_id(tx, ended.event_ids)
        if events and events[0].name in _NO_LOOPS:
            names = [name for name in names if name not in _NO_LOOPS]
        if names:
            self._ingest(tx, routing.lifecycle_events(ended, events, names, now), routing, now)

    def _listened(
        self: StoreInternals, tx: RawTransaction, name: str, routing: EventRouting
    ) -> bool:
        """Whether a function triggers on events named `name` or a run waits for one."""
        [version] = tx.scalars(self._sql.registry_version)
        if self._triggers_on(tx, version, name, routing):
            return True
        return bool(self._waited_names(tx, [name]))

    def _events_by_id(self: StoreInternals, tx: RawTransaction, ids: Any) -> list[EventRecord]:
        if not ids:
            return []
        rows = {r["internal_id"]: r for r in tx.rows(self._sql.events, internal_ids=list(ids))}
        return [EventRecord.from_row(rows[i]) for i in ids if i in rows]

    def _settle_parent(
        self: StoreInternals, tx: RawTransaction, ended: RunEnd, now: datetime
    ) -> None:
        """Give the parent's waiting step this run's outcome and make the parent due.

        A parallel branch makes its parent due only once no branch is left waiting (the group's
        step is then completed). The parent's queue row is locked already (it is locked
        first); if the parent has ended, or its step timed out meanwhile, nothing is settled.
        """
        status, output, error = _child_outcome(ended)
        settled = tx.execute(
            self._endings.settle_parent_step,
            run_id=ended.parent_run_id,
            step_hash=ended.parent_step,
            status=status,
            output=output,
            error=error,
            ended_at=now.timestamp(),
        )
        if settled and ended.parent_run_id is not None:  # (set: the caller checked)
            self._refer_to_blob(tx, ended.parent_run_id, output)
        if not settled or tx.scalars(self._endings.waiting_branches, run_id=ended.parent_run_id)[0]:
            return
        tx.execute(self._endings.settle_group, run_id=ended.parent_run_id, ended_at=now.timestamp())
        tx.execute(self._sql.make_due, run_id=ended.parent_run_id, available_at=now.timestamp())

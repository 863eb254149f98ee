"""Flow control when a run is created: limits that skip, merge, cancel or delay triggers.

Applied inside the transaction that stores the trigger, in this order:

1. rate limit and idempotency: over the limit, the trigger is refused (skipped);
2. debounce and batch: the trigger joins the key's queued run while it has not started;
3. singleton: a trigger whose key has an active run is skipped, or cancels that run;
4. throttle: the run is delayed to its turn (GCRA: starts spread evenly over the period).

A refused trigger is stored as a SKIPPED run that says why (or, for "Run now", raises
`Conflict`). Every row of limit state is created if absent, then locked, so that concurrent
transactions on PostgreSQL serialize per key instead of double-counting.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Double, String, bindparam, delete, insert, select, update

from stepline import errors
from stepline._durations import period_text
from stepline._flow_keys import key_value
from stepline.store import schema as t
from stepline.store._prepared import Prepared, RawTransaction
from stepline.store._upsert import insert_if_absent
from stepline.store.base import NO_FLOW, Bucket, EventRouting, Gather, NewRun, RunEnd, RunStatus

if TYPE_CHECKING:
    from stepline.store._internals import StoreInternals

_STARTABLE = ("QUEUED", "RUNNING")
_GATHERING = {"debounce": "DEBOUNCING", "batch": "BATCHING"}


class AdmissionStatements:
    """The statements of run admission, compiled once per store."""

    def __init__(self, dialect: Any, prepare: Callable[..., Prepared]) -> None:
        b, s, p = t.flow_buckets.c, t.singletons.c, t.pending_runs.c
        q, r = t.queue.c, t.runs.c
        key = bindparam("key", type_=String)
        run_id = bindparam("run_id", type_=String)
        self.ensure_bucket = prepare(
            insert_if_absent(dialect, t.flow_buckets), ["key", "tat", "expires_at"]
        )
        self.bucket = prepare(select(b.tat).where(b.key == key).with_for_update())
        self.set_bucket = prepare(
            update(t.flow_buckets)
            .where(b.key == key)
            .values(tat=bindparam("tat", type_=Double), expires_at=bindparam("expires"))
        )
        self.ensure_singleton = prepare(insert_if_absent(dialect, t.singletons), ["key", "run_id"])
        self.singleton = prepare(select(s.run_id).where(s.key == key).with_for_update())
        self.set_singleton = prepare(
            update(t.singletons).where(s.key == key).values(run_id=bindparam("holder"))
        )
        self.run_status = prepare(select(r.status).where(r.id == run_id))
        self.ensure_pending = prepare(
            insert_if_absent(dialect, t.pending_runs), ["key", "run_id", "size", "first_at"]
        )
        self.pending = prepare(
            select(p.run_id, p.size, p.first_at).where(p.key == key).with_for_update()
        )
        self.set_pending = prepare(
            update(t.pending_runs)
            .where(p.key == key)
            .values(
                run_id=bindparam("holder"),
                size=bindparam("size"),
                first_at=bindparam("first_at"),
            )
        )
        # The gathering run's queue row, if no worker has taken it yet (locked, like a claim).
        self.unclaimed = prepare(
            select(q.run_id, r.event_ids)
            .join(t.runs, r.id == q.run_id)
            .where(q.run_id == run_id, q.lease_owner.is_(None), r.started_at.is_(None))
            .with_for_update(of=t.queue)
        )
        self.set_run_events = prepare(
            update(t.runs).where(r.id == run_id), ["event_id", "event_ids"]
        )
        self.set_available = prepare(
            update(t.queue).where(q.run_id == run_id).values(available_at=bindparam("at"))
        )
        self.insert_member = prepare(insert(t.batch_members), ["event_id", "run_id"])
        self.insert_listener = prepare(
            insert(t.cancel_listeners),
            [
                "run_id",
                "event_name",
                "expression",
                "match_path",
                "match_value",
                "created_at",
                "expires_at",
            ],
        )
        self.forget_expired_buckets = prepare(
            delete(t.flow_buckets).where(b.expires_at < bindparam("now"))
        )


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a trigger starts no run: a detail code, the reason in words, the run in the way."""

    detail: str
    reason: str
    holder: str | None = None


def gcra(tat: float, now: float, bucket: Bucket, *, tolerance: float) -> tuple[float, float]:
    """(earliest start, new theoretical arrival time) of one more start in `bucket`."""
    interval = bucket.period_seconds / bucket.limit
    arrival = max(tat, now)
    return max(now, arrival - tolerance), arrival + interval


def _for_key(key: str) -> str:
    value = key_value(key)
    return f" for key {value}" if value else ""


class Admission:
    """Applies a `FlowPlan`'s limits in a transaction (see the module docstring)."""

    def __init__(self, sql: AdmissionStatements) -> None:
        self._sql = sql

    def refusal(self, tx: RawTransaction, run: NewRun, now: float) -> Refusal | None:
        """Rate limit and idempotency: a `Refusal` if the trigger is over either."""
        flow = run.flow
        if flow.idempotency is not None and self._over(tx, flow.idempotency, now):
            return Refusal(
                "IDEMPOTENCY",
                f"idempotency: a run with key {key_value(flow.idempotency.key)} "
                "started in the last 24h",
            )
        if flow.rate_limit is not None:
            bucket = flow.rate_limit
            if self._over(tx, bucket, now):
                return Refusal(
                    "RATE_LIMITED",
                    f"rate limit: {bucket.limit} per {period_text(bucket.period_seconds)}"
                    f"{_for_key(bucket.key)} reached",
                )
        return None

    def _locked_tat(self, tx: RawTransaction, key: str, now: float) -> float:
        tx.execute(self._sql.ensure_bucket, key=key, tat=now, expires_at=now)
        [tat] = tx.scalars(self._sql.bucket, key=key)
        return float(tat)

    def _over(self, tx: RawTransaction, bucket: Bucket, now: float) -> bool:
        """Count one start against a skip-type bucket; True (counting nothing) if it is full."""
        tat = self._locked_tat(tx, bucket.key, now)
        tolerance = bucket.period_seconds - bucket.period_seconds / bucket.limit
        start, new_tat = gcra(tat, now, bucket, tolerance=tolerance)
        if start > now:
            return True
        tx.execute(self._sql.set_bucket, key=bucket.key, tat=new_tat, expires=new_tat)
        return False

    def throttled_start(self, tx: RawTransaction, bucket: Bucket, now: float) -> float:
        """Count one start against a throttle; returns when the run may start."""
        tat = self._locked_tat(tx, bucket.key, now)
        tolerance = (bucket.burst - 1) * bucket.period_seconds / bucket.limit
        start, new_tat = gcra(tat, now, bucket, tolerance=tolerance)
        tx.execute(self._sql.set_bucket, key=bucket.key, tat=new_tat, expires=new_tat)
        return start

    def singleton_holder(self, tx: RawTransaction, key: str) -> str | None:
        """The active run holding a singleton key (the key's row is locked), or None."""
        tx.execute(self._sql.ensure_singleton, key=key, run_id="")
        [holder] = tx.scalars(self._sql.singleton, key=key)
        if not holder:
            return None
        status = tx.scalars(self._sql.run_status, run_id=holder)
        return str(holder) if status and status[0] in _STARTABLE else None

    def hold_singleton(self, tx: RawTransaction, key: str, run_id: str) -> None:
        """Record `run_id` as the key's holder (its row is locked by `singleton_holder`)."""
        tx.execute(self._sql.set_singleton, key=key, holder=run_id)

    def gathering_run(self, tx: RawTransaction, gather: Gather) -> tuple[str, list[str], Any]:
        """(run id, its event ids, the pending row) of the key's unstarted run, or ("", ...)."""
        tx.execute(self._sql.ensure_pending, key=gather.key, run_id="", size=0, first_at=0.0)
        pending = tx.first(self._sql.pending, key=gather.key)
        assert pending is not None  # ensured just above
        if pending["run_id"]:
            row = tx.first(self._sql.unclaimed, run_id=pending["run_id"])
            if row is not None:
                return str(row["run_id"]), json.loads(row["event_ids"]), pending
        return "", [], pending

    def join(
        self,
        tx: RawTransaction,
        gather: Gather,
        run_id: str,
        event_ids: list[str],
        pending: Any,
        new_event: str,
        now: float,
    ) -> str | None:
        """Add `new_event` to the gathering run; returns the event it supersedes (debounce)."""
        sql = self._sql
        size = int(pending["size"]) + 1
        due: float | None
        if gather.kind == "debounce":
            due = now + gather.delay_seconds
            if gather.timeout_seconds is not None:
                due = min(due, float(pending["first_at"]) + gather.timeout_seconds)
            ids = [new_event]
        else:
            due = now if size >= gather.max_size else None
            ids = [*event_ids, new_event]
            tx.execute(sql.insert_member, event_id=new_event, run_id=run_id)
        tx.execute(sql.set_run_events, run_id=run_id, event_id=ids[0], event_ids=json.dumps(ids))
        if due is not None:
            tx.execute(sql.set_available, run_id=run_id, at=due)
        full = gather.kind == "batch" and size >= gather.max_size
        tx.execute(
            sql.set_pending,
            key=gather.key,
            holder="" if full else run_id,
            size=0 if full else size,
            first_at=pending["first_at"],
        )
        return event_ids[0] if gather.kind == "debounce" and event_ids else None

    def start_gathering(self, tx: RawTransaction, gather: Gather, run_id: str, now: float) -> None:
        """Make `run_id` the key's gathering run, holding its first trigger."""
        tx.execute(self._sql.set_pending, key=gather.key, holder=run_id, size=1, first_at=now)

    def sweep(self, tx: RawTransaction, now: float) -> None:
        """Forget buckets whose state is back to "fresh" (their key has been quiet long enough)."""
        tx.execute(self._sql.forget_expired_buckets, now=now)

    def listen(self, tx: RawTransaction, run: NewRun, now: float) -> None:
        """Register the run's `cancel_on` listeners."""
        tx.execute_many(
            self._sql.insert_listener,
            [
                {
                    "run_id": run.id,
                    "event_name": listener.event_name,
                    "expression": listener.expression,
                    "match_path": listener.match_path,
                    "match_value": listener.match_value,
                    "created_at": now,
                    "expires_at": listener.expires_at.timestamp(),
                }
                for listener in run.flow.cancel_on
            ],
        )


def _run_row(run: NewRun, status: RunStatus, now: datetime) -> dict[str, Any]:
    """A new run's columns, but for those of flow control and composition."""
    return {
        "id": run.id,
        "function_id": run.function_id,
        "status": status,
        "trigger_kind": run.trigger_kind,
        "trigger_by": run.trigger_by,
        "trigger_reason": run.trigger_reason,
        "event_id": run.event_ids[0] if run.event_ids else None,
        "event_ids": json.dumps(list(run.event_ids)),
        "replay_of": run.replay_of,
        "idempotency_key": run.idempotency_key,
        "attempt": 0,
        "failures": 0,
        "created_at": now.timestamp(),
        "timeout_seconds": run.timeout_seconds,
        "counters": "{}",
        "saved_before_step": -1,
        "dry_run": run.dry_run,
    }


def refuse(run: NewRun, refusal: Refusal) -> errors.Conflict:
    """The error for a refused "Run now": names the reason and the run in the way."""
    return errors.Conflict(
        f"function {run.function_id!r} started no run: {refusal.reason}", run_id=refusal.holder
    )


class AdmittingMixin:
    """`SqlStore`'s admission of new runs: applies a `FlowPlan`, then stores the outcome."""

    def _admit(
        self: StoreInternals, tx: RawTransaction, run: NewRun, now: datetime, routing: EventRouting
    ) -> bool:
        """Apply the run's flow control (`admission`), then store what it decided."""
        if run.flow is NO_FLOW and run.parent_run_id is None:
            self._insert_plain_run(tx, run, now)
            return True
        admission, flow, stamp = self._admission, run.flow, now.timestamp()
        refusal = admission.refusal(tx, run, stamp)
        gather = flow.gather
        if gather is not None and gather.kind == "batch" and gather.max_size == 1:
            gather = None  # a batch of one is a run per event
        if refusal is None and gather is not None and run.event_ids:
            gathering, event_ids, pending = admission.gathering_run(tx, gather)
            if gathering:
                new_event = run.event_ids[0]
                superseded = admission.join(
                    tx, gather, gathering, event_ids, pending, new_event, stamp
                )
                if superseded is not None:
                    reason = f"debounced: superseded by event {new_event}"
                    skipped = replace(run, event_ids=(superseded,))
                    self._insert_skipped(tx, skipped, Refusal("DEBOUNCED", reason), now, routing)
                return True
        if refusal is None and flow.singleton is not None:
            refusal = self._singleton(tx, run, now, routing)
        if refusal is not None:
            if flow.refuse == "raise":
                raise refuse(run, refusal)
            self._insert_skipped(tx, run, refusal, now, routing)
            return False
        available, detail = (run.available_at or now).timestamp(), None
        if gather is not None:
            available, detail = stamp + gather.delay_seconds, _GATHERING[gather.kind]
            admission.start_gathering(tx, gather, run.id, stamp)
        if flow.throttle is not None:
            start = admission.throttled_start(tx, flow.throttle, stamp)
            if start > available:
                available, detail = start, detail or "THROTTLED"
        self._insert_run_rows(tx, run, now, available_at=available, detail=detail)
        admission.listen(tx, run, stamp)
        return True

    def _singleton(
        self: StoreInternals, tx: RawTransaction, run: NewRun, now: datetime, routing: EventRouting
    ) -> Refusal | None:
        """Hold the run's singleton key: refuse it ("skip") or cancel the active run ("cancel")."""
        assert run.flow.singleton is not None
        key, mode = run.flow.singleton
        holder = self._admission.singleton_holder(tx, key)
        if holder is not None and mode == "skip":
            return Refusal("SINGLETON", f"singleton: run {holder} is still active", holder)
        if holder is not None:
            reason = f"cancelled by singleton: replaced by run {run.id}"
            self._end_run(tx, holder, "CANCELLED", now, routing, reason=reason)
        self._admission.hold_singleton(tx, key, run.id)
        return None

    def _insert_skipped(
        self: StoreInternals,
        tx: RawTransaction,
        run: NewRun,
        refusal: Refusal,
        now: datetime,
        routing: EventRouting,
    ) -> None:
        """Store a refused trigger as a SKIPPED run saying why; settle a waiting parent."""
        self._insert_run_rows(
            tx, run, now, status="SKIPPED", detail=refusal.detail, reason=refusal.reason
        )
        if run.parent_run_id is not None:
            ended = RunEnd(
                run_id=run.id,
                function_id=run.function_id,
                status="SKIPPED",
                output=None,
                error=None,
                event_ids=tuple(run.event_ids),
                parent_run_id=run.parent_run_id,
                parent_step=run.parent_step,
                reason=refusal.reason,
            )
            self._after_end(tx, ended, now, routing)

    def _insert_plain_run(
        self: StoreInternals, tx: RawTransaction, run: NewRun, now: datetime
    ) -> None:
        """A run without flow control or parent, and its queue item (the hot path)."""
        tx.execute(self._sql.insert_plain_run, **_run_row(run, "QUEUED", now))
        tx.execute(
            self._sql.insert_plain_queue_item,
            run_id=run.id,
            function_id=run.function_id,
            available_at=(run.available_at or now).timestamp(),
            priority=0,
        )

    def _insert_run_rows(
        self: StoreInternals,
        tx: RawTransaction,
        run: NewRun,
        now: datetime,
        *,
        available_at: float | None = None,
        status: RunStatus = "QUEUED",
        detail: str | None = None,
        reason: str | None = None,
    ) -> None:
        """The run's row and, unless it is SKIPPED, its queue item with its slots."""
        start_by = run.flow.start_by.timestamp() if run.flow.start_by else None
        tx.execute(
            self._sql.insert_run,
            **_run_row(run, status, now),
            detail=detail,
            reason=reason,
            ended_at=now.timestamp() if status == "SKIPPED" else None,
            parent_run_id=run.parent_run_id,
            parent_step=run.parent_step,
            start_by=start_by,
        )
        if status == "SKIPPED":
            return
        slots = [*list(run.flow.slots), None, None]
        tx.execute(
            self._sql.insert_queue_item,
            run_id=run.id,
            function_id=run.function_id,
            available_at=available_at if available_at is not None else now.timestamp(),
            priority=run.flow.priority,
            timeout_at=start_by,
            slot_key_1=slots[0].key if slots[0] else None,
            slot_limit_1=slots[0].limit if slots[0] else None,
            slot_key_2=slots[1].key if slots[1] else None,
            slot_limit_2=slots[1].limit if slots[1] else None,
        )

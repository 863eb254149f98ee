"""Reads for the dashboard's pages and the metrics: timings, leases, summaries, backlogs.

Run timings, leases by worker, runs lists' summaries, and each function's backlog. Each is
bounded by an index: the timings by the window on `ended_at`, the leases and the backlog by
the queue (active runs only), the summaries by the primary keys of one page of runs. None
reads every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.engine import Connection

from stepline.store import schema as t
from stepline.store.base import Backlog, LeasedRun, RunSummary, RunTiming, from_epoch
from stepline.store.slots import full_keys_read

# Run details meaning "queued until later by flow control" (the run's throttle, debounce, batch).
FLOW_DETAILS = ("THROTTLED", "DEBOUNCING", "BATCHING")
CONCURRENCY = "CONCURRENCY"


class _Reader(Protocol):
    def _read(self) -> AbstractContextManager[Connection]: ...


class InsightsMixin:
    """`SqlStore`'s reads for the dashboard's pages (see the module docstring)."""

    def function_timings(self: _Reader, function_id: str, since: datetime) -> list[RunTiming]:
        """One function's runs that ended at or after `since`, oldest end first."""
        r = t.runs.c
        # Comparing an expression, not the bare column, keeps the planners off the
        # (function_id, ...) indexes, which would read every run the function ever had: the
        # `ended_at` index's range holds only the window (of every function's runs).
        query = (
            select(r.status, r.started_at, r.ended_at)
            .where(r.ended_at >= since.timestamp(), r.function_id.concat("") == function_id)
            .order_by(r.ended_at)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            RunTiming(
                status=status,
                ended_at=datetime.fromtimestamp(ended_at, UTC),
                seconds=None if started_at is None else max(0.0, ended_at - started_at),
            )
            for status, started_at, ended_at in rows
        ]

    def leased_runs(self: _Reader) -> list[LeasedRun]:
        """The runs whose lease a worker holds, by worker id then run id."""
        q = t.queue.c
        query = (
            select(q.run_id, q.function_id, q.lease_owner)
            .where(q.lease_owner.is_not(None))
            .order_by(q.lease_owner, q.run_id)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            LeasedRun(run_id=run_id, function_id=function_id, worker_id=owner)
            for run_id, function_id, owner in rows
        ]

    def run_summaries(
        self: _Reader, run_ids: Sequence[str], data_chars: int
    ) -> dict[str, RunSummary]:
        """Each run's event name, the start of its event's data, and its count of steps."""
        if not run_ids:
            return {}
        r, e, s = t.runs.c, t.events.c, t.steps.c
        steps = select(func.count()).where(s.run_id == r.id).scalar_subquery()
        query = (
            select(r.id, e.name, func.substr(e.data, 1, data_chars), func.length(e.data), steps)
            .select_from(t.runs.outerjoin(t.events, e.internal_id == r.event_id))
            .where(r.id.in_(list(run_ids)))
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return {
            run_id: RunSummary(event_name=name, data=data, data_length=length, steps=count)
            for run_id, name, data, length, count in rows
        }

    def backlog(self: _Reader, now: datetime) -> list[Backlog]:
        """Per function with runs due, held back by flow control or in a step: its `Backlog`.

        Four grouped reads in one connection: the claimable queue items, due and not leased
        or leased by a worker whose lease expired (the range of the `available_at` index up to
        now: items due or leased, not the sleeping ones); the queued runs with a flow-control
        detail whose queue item is not yet due (the `status` index); the due items of full
        concurrency keys (read only when a key is full); and the oldest step in flight among
        the live leases (the partial index of leased items).
        """
        q, r = t.queue.c, t.runs.c
        at = now.timestamp()
        # Claimable: due, and not leased (or leased by a worker that let its lease expire).
        ready = and_(q.available_at <= at, or_(q.lease_owner.is_(None), q.lease_expires_at < at))
        held_back = (
            select(r.function_id, r.detail, func.count())
            .select_from(t.runs.join(t.queue, q.run_id == r.id))
            .where(r.status == "QUEUED", r.detail.in_(FLOW_DETAILS), q.available_at > at)
            .group_by(r.function_id, r.detail)
        )
        live = (q.lease_owner.is_not(None), q.lease_expires_at >= at)  # the leased items' index
        in_step = and_(*live, q.step_started_at.is_not(None))
        due: dict[str, tuple[int, float]] = {}
        waiting: dict[str, dict[str, int]] = {}
        with self._read() as conn:
            oldest = func.min(q.available_at)
            for fn, count, at_most in conn.execute(_per_function(ready, func.count(), oldest)):
                due[fn] = (count, at_most)
            for fn, detail, count in conn.execute(held_back):
                waiting.setdefault(fn, {})[detail] = count
            full = full_keys_read(conn)
            if full:
                keyed = or_(q.slot_key_1.in_(full), q.slot_key_2.in_(full))
                for fn, count in conn.execute(_per_function(and_(ready, keyed), func.count())):
                    waiting.setdefault(fn, {})[CONCURRENCY] = count
            first_step = func.min(q.step_started_at)
            rows = conn.execute(_per_function(in_step, first_step))
            since: dict[str, float] = {fn: started for fn, started in rows}
        return [
            Backlog(
                function_id=fn,
                due=due[fn][0] if fn in due else 0,
                oldest_due_at=from_epoch(due[fn][1]) if fn in due else None,
                waiting=waiting.get(fn, {}),
                step_since=from_epoch(since.get(fn)),
            )
            for fn in sorted({*due, *waiting, *since})
        ]


def _per_function(where: ColumnElement[bool], *columns: ColumnElement[Any]) -> Select[Any]:
    """`columns` of the queue items matching `where`, grouped by function."""
    q = t.queue.c
    return select(q.function_id, *columns).where(where).group_by(q.function_id)

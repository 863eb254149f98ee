"""Reads for the dashboard's pages: run timings, leases by worker, and runs lists' summaries.

Each is bounded by an index: the timings by the window on `ended_at`, the leases by the
queue (active runs only), the summaries by the primary keys of one page of runs. None reads
every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from stepline.store import schema as t
from stepline.store.base import LeasedRun, RunSummary, RunTiming


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

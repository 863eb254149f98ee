"""Reads for the dashboard's function and workers pages: run timings, and leases by worker.

Both are bounded by an index: the timings by the window on `ended_at`, the leases by the
queue (active runs only). Neither reads every run.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.engine import Connection

from stepline.store import schema as t
from stepline.store.base import LeasedRun, RunTiming


class _Reader(Protocol):
    def _read(self) -> AbstractContextManager[Connection]: ...


class InsightsMixin:
    """`SqlStore`'s reads for the function and workers pages (see the module docstring)."""

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

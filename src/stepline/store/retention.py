"""Pruning: ended runs past their retention leave, with everything stored under them.

A prune walks ended runs oldest end first, a batch at a time (`prune_batch`, one short
transaction each), then the old events no run refers to. What a run takes with it:

- the runs it started (`step.invoke`, `step.parallel` branches; `parent_run_id`), and theirs,
  whatever their own retention: a started run goes with the run that started it, never before.
  A run with a started run still active is kept until that one ends.
- its steps, failed attempts, log lines, waits, `cancel_on` listeners, batch memberships,
  references to blobs and any queue row left behind;
- its events (`event_id`, a batch's others), unless another run still refers to one (a replay,
  a live run, a gathering batch) or the event's id still holds its 24-hour deduplication.

The events no run refers to (sent to nobody, lifecycle events no one listened to, runs pruned
earlier) go once older than `PruneRule.events_before` and 24 hours (their deduplication).
Last, the blobs (large outputs) no run refers to any more go with their bytes
(`store/blobs.py`).
Singleton and debounce/batch key rows stay: one per key, not per run, and a key held by a
pruned run is free.

Each batch is one transaction over at most `limit` runs (with their started runs) or events,
found by index ranges (`runs.ended_at`, `events.received_at`) from a keyset cursor, so no batch
holds the write lock (SQLite) or row locks (PostgreSQL) for long. A dry run reads the same
batches and counts what would go, deleting nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Table, and_, delete, exists, func, or_, select, tuple_
from sqlalchemy.engine import Connection

from stepline.store import schema as t
from stepline.store.base import ACTIVE_STATUSES, END_STATUSES
from stepline.store.pruning import Cursor, PruneCounts, PrunePass, PruneRule, timed_write

DEDUP_WINDOW = timedelta(hours=24)  # an event id's idempotency window (`sql.EVENT_ID_TTL`)
_CHUNK = 500  # ids per IN list


class _Connector(Protocol):
    def _read(self) -> AbstractContextManager[Connection]: ...

    def _write(self) -> AbstractContextManager[Connection]: ...

    def _prune_blobs(self, progress: PrunePass, limit: int) -> PruneCounts: ...


def _chunks(items: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield list(items[start : start + _CHUNK])


def _ended_before(rule: PruneRule) -> ColumnElement[bool] | None:
    """The condition on `runs` of an ended run past its cutoff; None when none can be."""
    r = t.runs.c
    terms = [
        and_(r.function_id == function_id, r.ended_at < cutoff)
        for function_id, cutoff in rule.cutoffs.items()
        if cutoff is not None
    ]
    if rule.default is not None:
        others = r.function_id.not_in(list(rule.cutoffs)) if rule.cutoffs else None
        terms.append(
            r.ended_at < rule.default if others is None else and_(others, r.ended_at < rule.default)
        )
    return or_(*terms) if terms else None


def _latest_cutoff(rule: PruneRule) -> float:
    return max(c for c in (rule.default, *rule.cutoffs.values()) if c is not None)


def _after(columns: tuple[Any, Any], cursor: Cursor | None) -> list[ColumnElement[bool]]:
    """Keyset condition: past `cursor` in (time, id) order; the time bound uses the index."""
    if cursor is None:
        return []
    return [columns[0] >= cursor[0], tuple_(*columns) > tuple_(*cursor)]


def _count(conn: Connection, table: Table, run_ids: Sequence[str]) -> int:
    column = table.c.run_id
    return sum(
        conn.execute(select(func.count()).where(column.in_(chunk))).scalar_one()
        for chunk in _chunks(run_ids)
    )


def _delete(conn: Connection, table: Table, run_ids: Sequence[str]) -> int:
    column = table.c.id if table is t.runs else table.c.run_id
    return sum(
        conn.execute(delete(table).where(column.in_(chunk))).rowcount for chunk in _chunks(run_ids)
    )


@dataclass(frozen=True, slots=True)
class _Batch:
    """A batch's runs as found by reading: their ids, batch memberships and events."""

    run_ids: list[str]
    members: list[tuple[str, str]]  # (event id, run id) of a batch's events after its first
    events: list[str]


class RetentionMixin:
    """`SqlStore`'s pruning (see the module docstring)."""

    prune_write_seconds = 0.01  # PostgreSQL; SQLite's is shorter (its only write lock)

    def prune_batch(self: _Connector, progress: PrunePass, limit: int) -> PruneCounts:
        """Remove (dry: count) one batch of runs, or of events once the runs are done.

        Up to `limit` runs with the runs they started, then up to `limit` events no run
        refers to; advances `progress`. The batch is found by reading, outside any write
        transaction; the transaction that deletes it (SQLite: holding the write lock) makes
        only index lookups and deletes.
        """
        progress.write_seconds = 0.0
        if not progress.runs_done:
            with self._read() as conn:
                batch = _find_runs(conn, progress, limit)
            if batch is None or not batch.run_ids:  # none left, or all kept for now
                return PruneCounts()
            if progress.dry_run:
                with self._read() as conn:
                    counts = _count_runs(conn, batch)
                    progress.counted_runs.update(batch.run_ids)
                    counts.events = _drop_events(conn, progress, batch.events)
                return counts
            with timed_write(progress), self._write() as conn:
                counts = _delete_runs(conn, batch)
                counts.events = _drop_events(conn, progress, batch.events)
            return counts
        if not progress.events_done:
            with self._read() as conn:
                events = _find_events(conn, progress, limit)
            if events:
                with (
                    timed_write(progress),
                    self._read() if progress.dry_run else self._write() as conn,
                ):
                    return PruneCounts(events=_drop_events(conn, progress, events))
            return PruneCounts()
        return self._prune_blobs(progress, limit)


def _find_runs(conn: Connection, progress: PrunePass, limit: int) -> _Batch | None:
    """The next batch of runs past their cutoff, with the runs they started; None if none.

    Ended runs that no run started (or whose starter is gone), oldest end first.
    """
    r = t.runs.c
    rule = progress.rule
    condition = _ended_before(rule)
    if condition is None:
        progress.runs_done = True
        return None
    starter = t.runs.alias("starter")
    unstarted = or_(r.parent_run_id.is_(None), ~exists().where(starter.c.id == r.parent_run_id))
    # Only ended runs have `ended_at`; their status is checked here rather than in the query,
    # which leaves the planners one index to choose: `ended_at`'s, in the order asked for.
    rows = conn.execute(
        select(r.id, r.ended_at, r.status, r.event_ids)
        .where(
            r.ended_at < _latest_cutoff(rule),
            condition,
            unstarted,
            *_after((r.ended_at, r.id), progress.run_cursor),
        )
        .order_by(r.ended_at, r.id)
        .limit(limit)
    ).all()
    if len(rows) < limit:
        progress.runs_done = True
    if not rows:
        return None
    progress.run_cursor = (rows[-1].ended_at, rows[-1].id)
    events = {row.id: json.loads(row.event_ids) for row in rows if row.status in END_STATUSES}
    root_of, blocked = _trees(conn, list(events), events)
    kept = {run_id: ids for run_id, ids in events.items() if root_of[run_id] not in blocked}
    return _Batch(
        run_ids=list(kept),
        members=[(e, run_id) for run_id, ids in kept.items() for e in ids[1:]],
        events=sorted({e for ids in kept.values() for e in ids}),
    )


def _trees(
    conn: Connection, roots: list[str], events: dict[str, list[str]]
) -> tuple[dict[str, str], set[str]]:
    """Add the runs `roots` started, and those started by them, to `events` (run → event ids).

    Returns each run's root, and the roots with a started run still active (kept for now).
    """
    r = t.runs.c
    root_of = {root: root for root in roots}
    blocked: set[str] = set()
    frontier = roots
    while frontier:
        level: list[str] = []
        for chunk in _chunks(frontier):
            query = select(r.id, r.parent_run_id, r.status, r.event_ids).where(
                r.parent_run_id.in_(chunk)
            )
            for row in conn.execute(query):
                root = root_of[row.id] = root_of[row.parent_run_id]
                events[row.id] = json.loads(row.event_ids)
                if row.status in ACTIVE_STATUSES:
                    blocked.add(root)
                level.append(row.id)
        frontier = level
    return root_of, blocked


def _count_runs(conn: Connection, batch: _Batch) -> PruneCounts:
    """A dry run's counts of what `_delete_runs` would remove."""
    return PruneCounts(
        runs=len(batch.run_ids),
        steps=_count(conn, t.steps, batch.run_ids),
        attempts=_count(conn, t.attempts, batch.run_ids),
        logs=_count(conn, t.run_logs, batch.run_ids),
    )


def _delete_runs(conn: Connection, batch: _Batch) -> PruneCounts:
    """Delete the runs and everything stored under them; returns what went.

    A run's queue row (a leftover: ended runs have none) goes first, as every writer touching
    a run locks that first.
    """
    run_ids = batch.run_ids
    for table in (t.queue, t.waits, t.cancel_listeners, t.blob_refs):
        _delete(conn, table, run_ids)
    counts = PruneCounts(
        steps=_delete(conn, t.steps, run_ids),
        attempts=_delete(conn, t.attempts, run_ids),
        logs=_delete(conn, t.run_logs, run_ids),
    )
    bm = t.batch_members.c
    for start in range(0, len(batch.members), _CHUNK):
        pairs = batch.members[start : start + _CHUNK]
        conn.execute(
            delete(t.batch_members).where(
                bm.event_id.in_(sorted({e for e, _ in pairs})),
                bm.run_id.in_(sorted({run for _, run in pairs})),
            )
        )
    counts.runs = _delete(conn, t.runs, run_ids)
    return counts


def _find_events(conn: Connection, progress: PrunePass, limit: int) -> list[str]:
    """The next events received before the rule's bound, oldest first (referred to or not)."""
    rule = progress.rule
    if rule.events_before is None:
        progress.events_done = True
        return []
    e = t.events.c
    before = min(rule.events_before, rule.now - DEDUP_WINDOW.total_seconds())
    rows = conn.execute(
        select(e.internal_id, e.received_at)
        .where(
            e.received_at < before, *_after((e.received_at, e.internal_id), progress.event_cursor)
        )
        .order_by(e.received_at, e.internal_id)
        .limit(limit)
    ).all()
    if len(rows) < limit:
        progress.events_done = True
    if rows:
        progress.event_cursor = (rows[-1].received_at, rows[-1].internal_id)
    return [row.internal_id for row in rows]


def _drop_events(conn: Connection, progress: PrunePass, candidates: Sequence[str]) -> int:
    """Delete (dry: count) the events among `candidates` that are free; returns how many.

    Free: no remaining run refers to it, and its id no longer holds its deduplication window.
    """
    r, bm, e, ids = t.runs.c, t.batch_members.c, t.events.c, t.event_ids.c
    gone = progress.counted_runs  # a dry run's runs counted as removed (empty otherwise)
    referred: set[str] = set(progress.counted_events)  # (and its events: counted once)
    free: list[tuple[str, str]] = []
    for chunk in _chunks(candidates):
        for run_id, event_id in [
            *conn.execute(select(r.id, r.event_id).where(r.event_id.in_(chunk))),
            *conn.execute(select(bm.run_id, bm.event_id).where(bm.event_id.in_(chunk))),
        ]:
            if run_id not in gone:
                referred.add(event_id)
        rest = [event_id for event_id in chunk if event_id not in referred]
        if not rest:
            continue
        stored = conn.execute(select(e.internal_id, e.id).where(e.internal_id.in_(rest))).all()
        if not stored:
            continue
        held = set(
            conn.execute(
                select(ids.internal_id).where(
                    ids.id.in_(sorted({row.id for row in stored})),
                    ids.expires_at > progress.rule.now,
                )
            ).scalars()
        )
        free += [(row.internal_id, row.id) for row in stored if row.internal_id not in held]
    if progress.dry_run:
        progress.counted_events.update(internal for internal, _ in free)
        return len(free)
    removed = 0
    for start in range(0, len(free), _CHUNK):
        pairs = free[start : start + _CHUNK]
        internal = [internal for internal, _ in pairs]
        conn.execute(
            delete(t.event_ids).where(
                ids.id.in_(sorted({sender for _, sender in pairs})), ids.internal_id.in_(internal)
            )
        )
        removed += conn.execute(delete(t.events).where(e.internal_id.in_(internal))).rowcount
    return removed

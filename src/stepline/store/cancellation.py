"""`cancel_on`: runs listening for events that cancel them, found by event name at intake.

Listeners are stored with their run (admission) and looked up by the incoming event's name
through an index, so an event costs nothing for runs that do not listen for its name. A
listener outlives its run until the scheduler's sweep (or a match finds its run ended).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, delete, or_, select

from stepline.store import schema as t
from stepline.store._prepared import Prepared, RawTransaction
from stepline.store.base import ACTIVE_STATUSES, EventRecord, EventRouting

if TYPE_CHECKING:
    from stepline.store._internals import StoreInternals


class CancellationStatements:
    """The statements of `cancel_on`, compiled once per store."""

    def __init__(self, prepare: Callable[..., Prepared]) -> None:
        c, r = t.cancel_listeners.c, t.runs.c
        self.listeners_for = prepare(
            select(c.run_id, c.expression, r.event_id)
            .join(t.runs, r.id == c.run_id)
            .where(
                c.event_name == bindparam("name"),
                c.expires_at > bindparam("now"),
                r.status.in_(ACTIVE_STATUSES),
            )
            .order_by(c.seq)
        )
        ended = select(r.id).where(r.id == c.run_id, r.status.in_(ACTIVE_STATUSES)).exists()
        self.sweep = prepare(
            delete(t.cancel_listeners).where(or_(c.expires_at <= bindparam("now"), ~ended))
        )


class CancellationMixin:
    """`SqlStore`'s `cancel_on` matching."""

    def _cancel_listening(
        self: StoreInternals,
        tx: RawTransaction,
        event: EventRecord,
        routing: EventRouting,
        now: datetime,
    ) -> None:
        """Cancel every active run with a listener that `event` matches, naming the event."""
        rows = tx.rows(self._cancellation.listeners_for, name=event.name, now=now.timestamp())
        cancelled: set[str] = set()
        for row in rows:
            run_id = row["run_id"]
            if run_id in cancelled:
                continue
            trigger = self._event_by_internal_id(tx, row["event_id"])
            where = f"run {run_id} cancel_on({event.name!r})"
            if routing.condition_holds(row["expression"], event, trigger, where=where):
                cancelled.add(run_id)
                self._end_run(
                    tx,
                    run_id,
                    "CANCELLED",
                    now,
                    routing,
                    reason=f"cancelled by event {event.name!r} ({event.internal_id})",
                    cancelled_by=event.internal_id,
                )

"""`cancel_on`: runs listening for events that cancel them, found by event name at intake.

Listeners are stored with their run (admission) and looked up by the incoming event's name
through an index, so an event costs nothing for runs that do not listen for its name. A
`match` listener (`event.x == async.x`) stores the run's value at that path: an event finds
the runs it cancels by one index lookup per matched path, however many runs listen. Other
conditions are evaluated for each listener of the event's name. A
listener outlives its run until the scheduler's sweep (or a match finds its run ended).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import and_, bindparam, delete, or_, select

from stepline._flow_keys import MISSING, field_at, key_text
from stepline.store import schema as t
from stepline.store._prepared import Prepared, RawTransaction
from stepline.store.base import ACTIVE_STATUSES, EventRecord, EventRouting

if TYPE_CHECKING:
    from stepline.store._internals import StoreInternals


class CancellationStatements:
    """The statements of `cancel_on`, compiled once per store."""

    def __init__(self, prepare: Callable[..., Prepared]) -> None:
        c, r = t.cancel_listeners.c, t.runs.c
        listening = and_(
            c.event_name == bindparam("name"),
            c.expires_at > bindparam("now"),
            r.status.in_(ACTIVE_STATUSES),
        )
        self.conditions_for = prepare(
            select(c.run_id, c.expression, r.event_id)
            .join(t.runs, r.id == c.run_id)
            .where(listening, c.match_path.is_(None))
            .order_by(c.seq)
        )
        self.match_paths = prepare(
            select(c.match_path)
            .distinct()
            .where(c.event_name == bindparam("name"), c.match_path.is_not(None))
        )
        self.matching = prepare(
            select(c.run_id)
            .join(t.runs, r.id == c.run_id)
            .where(
                listening,
                c.match_path == bindparam("path"),
                c.match_value == bindparam("value"),
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
        matched = self._matched_listeners(tx, event, now) + self._held_conditions(
            tx, event, routing, now
        )
        reason = f"cancelled by event {event.name!r} ({event.internal_id})"
        for run_id in dict.fromkeys(matched):
            self._end_run(
                tx, run_id, "CANCELLED", now, routing, reason=reason, cancelled_by=event.internal_id
            )

    def _matched_listeners(
        self: StoreInternals, tx: RawTransaction, event: EventRecord, now: datetime
    ) -> list[str]:
        """Runs whose `match` value the event has at the same path: one index lookup a path."""
        sql = self._cancellation
        paths = tx.scalars(sql.match_paths, name=event.name)
        if not paths:
            return []
        payload = event.payload()
        matched: list[str] = []
        for path in paths:
            value = field_at(payload, path)
            if value is not MISSING:
                found = tx.scalars(
                    sql.matching,
                    name=event.name,
                    now=now.timestamp(),
                    path=path,
                    value=key_text(value),
                )
                matched.extend(found)
        return matched

    def _held_conditions(
        self: StoreInternals,
        tx: RawTransaction,
        event: EventRecord,
        routing: EventRouting,
        now: datetime,
    ) -> list[str]:
        """Runs whose listener's CEL condition holds for the event (evaluated one by one)."""
        rows = tx.rows(self._cancellation.conditions_for, name=event.name, now=now.timestamp())
        matched: list[str] = []
        for row in rows:
            trigger = self._event_by_internal_id(tx, row["event_id"])
            where = f"run {row['run_id']} cancel_on({event.name!r})"
            if routing.condition_holds(row["expression"], event, trigger, where=where):
                matched.append(row["run_id"])
        return matched

"""Concurrency limits at claim time: a leased queue item holds a slot of each of its keys.

The slots held per key are counted, never stored: they are the leased items carrying the key
(an index on leased, keyed items makes that a range count). A claim leases due items in claim
order, then checks the keys it leased under a per-key lock (PostgreSQL: transaction advisory
locks, taken in key order; SQLite has one writer) and hands back what went over a limit; if it
handed any back, a second pass leaves out every full key, so items of free keys behind them
start at once. Unkeyed items cost the claim nothing more. Two workers claiming items of one key
serialize on that key only, and the second sees the first's committed leases when it counts.

A full key's items stay queued (never failed, never polled for): `next_due_at` ignores them,
and a worker that frees a slot wakes the others (NOTIFY on PostgreSQL).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, func, literal, select, union_all, update

from stepline.store import schema as t
from stepline.store._prepared import Prepared, RawTransaction, Row

if TYPE_CHECKING:
    from stepline.store._internals import StoreInternals

NO_KEY = ""  # stands for "no full key" in the claim's NOT IN list (never a real key)
SLOT_COLUMNS = ("slot_key_1", "slot_limit_1", "slot_key_2", "slot_limit_2")


def _held(where: Callable[[Any], Any]) -> Any:
    """Leased items per (key, limit), over both key columns."""
    q = t.queue.c
    parts = [
        select(key.label("key"), q[limit].label("slot_limit"), func.count().label("n"))
        .where(key.is_not(None), q.lease_owner.is_not(None), where(key))
        .group_by(key, q[limit])
        for key, limit in ((q.slot_key_1, "slot_limit_1"), (q.slot_key_2, "slot_limit_2"))
    ]
    return union_all(*parts)


HELD_SLOTS = _held(lambda key: literal(True))


class SlotStatements:
    """The statements of concurrency limits, compiled once per store."""

    def __init__(self, prepare: Callable[..., Prepared]) -> None:
        q = t.queue.c
        self.held_all = prepare(HELD_SLOTS)
        self.held_of = prepare(_held(lambda key: key.in_(bindparam("keys", expanding=True))))
        self.unlease = prepare(
            update(t.queue)
            .where(q.run_id.in_(bindparam("run_ids", expanding=True)))
            .values(lease_owner=None, lease_expires_at=None)
        )


def is_keyed(row: Row) -> bool:
    """Whether a claimed queue item holds concurrency slots."""
    return row["slot_key_1"] is not None or row["slot_key_2"] is not None


def _keys(row: Row) -> list[tuple[str, int]]:
    return [
        (row[key], row[limit])
        for key, limit in (("slot_key_1", "slot_limit_1"), ("slot_key_2", "slot_limit_2"))
        if row[key] is not None
    ]


def full_keys(held: Iterable[Row]) -> list[str]:
    """Keys whose held slots reach their (largest) limit."""
    counts: Counter[str] = Counter()
    limits: dict[str, int] = {}
    for row in held:
        counts[row["key"]] += row["n"]
        limits[row["key"]] = max(limits.get(row["key"], 0), row["slot_limit"])
    return sorted(key for key, n in counts.items() if n >= limits[key])


def full_keys_read(conn: Connection) -> list[str]:
    """`full_keys` on a SQLAlchemy connection (reads: idle workers, API answers)."""
    return full_keys(dict(row) for row in conn.execute(HELD_SLOTS).mappings())


class SlotsMixin:
    """`SqlStore`'s concurrency limits (see the module docstring)."""

    def _claim_ready(
        self: StoreInternals, tx: RawTransaction, limit: int, lease: dict[str, Any]
    ) -> list[Row]:
        """Lease up to `limit` due items, in claim order, within their keys' limits.

        The first pass excludes nothing, so claims cost nothing extra while no key is full.
        If it had to hand items back, a second pass leaves out every full key.
        """
        leased = tx.rows(self._sql.claim_ready, limit=limit, full=[NO_KEY], **lease)
        leased.sort(key=lambda row: row["claim_order"])
        kept, full = self._within_limits(tx, leased)
        if not full or len(kept) >= limit:
            return kept
        exclude = sorted(full | set(self._full_keys(tx)) - {NO_KEY})
        more = tx.rows(self._sql.claim_ready, limit=limit - len(kept), full=exclude, **lease)
        more.sort(key=lambda row: row["claim_order"])
        return kept + self._within_limits(tx, more)[0]

    def _full_keys(self: StoreInternals, tx: RawTransaction) -> list[str]:
        """The keys with no free slot: their items are not claimed (`NO_KEY` if none)."""
        return full_keys(tx.rows(self._slots.held_all)) or [NO_KEY]

    def _lock_slot_keys(self, tx: RawTransaction, keys: Sequence[str]) -> None:
        """Serialize claims of these keys across processes (PostgreSQL); nothing on SQLite."""

    def _within_limits(
        self: StoreInternals, tx: RawTransaction, leased: list[Row]
    ) -> tuple[list[Row], set[str]]:
        """The leased items that fit their keys' limits, and the keys found full.

        The others are handed back; `leased` is in claim order, so those are the last ones.
        """
        keys = sorted({key for row in leased for key, _ in _keys(row)})
        if not keys:
            return leased, set()
        self._lock_slot_keys(tx, keys)
        held: Counter[str] = Counter()
        for row in tx.rows(self._slots.held_of, keys=keys):
            held[row["key"]] += row["n"]  # includes what this claim leased
        for row in leased:
            for key, _ in _keys(row):
                held[key] -= 1  # now: slots held by others
        kept: list[Row] = []
        dropped: list[str] = []
        full: set[str] = set()
        for row in leased:
            over = {key for key, limit in _keys(row) if held[key] >= limit}
            if not over:
                kept.append(row)
                for key, _ in _keys(row):
                    held[key] += 1
            else:
                dropped.append(row["run_id"])
                full |= over
        if dropped:
            tx.execute(self._slots.unlease, run_ids=dropped)
        return kept, full

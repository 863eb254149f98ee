"""Group commit on both stores: units of work from many threads share write transactions.

A caller returns only once the transaction holding its unit committed (its row is visible to
other connections by then); a unit that raises fails alone while the rest of its transaction
commits; a transaction the database itself breaks fails every unit in it, and commits none.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text

from stepline import errors
from stepline.store import schema as t
from stepline.store._prepared import Prepared, RawTransaction
from stepline.store.base import Store
from stepline.store.postgres import PostgresStore
from stepline.store.sql import SqlStore
from tests.engine.support import eventually

UNITS = 10


def _sql_store(store: Store) -> SqlStore:
    assert isinstance(store, SqlStore)
    return store


def _insert_app(store: SqlStore) -> Callable[[str], Callable[[RawTransaction], str]]:
    statement = Prepared(insert(t.apps), store.engine.dialect, ["id", "kind", "synced_at"])

    def unit(app_id: str) -> Callable[[RawTransaction], str]:
        def work(tx: RawTransaction) -> str:
            tx.execute(statement, id=app_id, kind="python", synced_at=1.0)
            return app_id

        return work

    return unit


def _apps(store: SqlStore) -> set[str]:
    with store._read() as conn:
        return {str(row[0]) for row in conn.execute(select(t.apps.c.id))}


class _Batch:
    """Leaders held open inside their transactions (as many as the store runs at once) while
    other callers queue behind them."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.leaders = 1  # transactions a store's group commit has under way at once
        self.release = threading.Event()
        self.inside = threading.Semaphore(0)
        self.outcomes: dict[str, Any] = {}
        self._threads: list[threading.Thread] = []

    def hold(self, tx: RawTransaction) -> str:
        self.inside.release()
        assert self.release.wait(30), "the test never released the leader"
        return "leader"

    def start(self, name: str, work: Callable[[RawTransaction], Any]) -> None:
        def call() -> None:
            try:
                self.outcomes[name] = self.store._group.run(work)
                # Acknowledged after the commit: another connection sees the row already.
                if isinstance(self.outcomes[name], str) and not name.startswith("leader"):
                    self.outcomes[name + ":seen"] = name in _apps(self.store)
            except Exception as exc:
                self.outcomes[name] = exc

        thread = threading.Thread(target=call)
        thread.start()
        self._threads.append(thread)

    def queued(self) -> int:
        return len(self.store._group._queue)

    def run(self, units: dict[str, Callable[[RawTransaction], Any]]) -> dict[str, Any]:
        """Run `units` queued behind the held leader, so they share one transaction."""
        for i in range(self.leaders):
            self.start(f"leader{i}", self.hold)
            assert self.inside.acquire(timeout=30)
        for name, work in units.items():
            self.start(name, work)
        eventually(lambda: self.queued() == len(units), what="every unit queued")
        self.release.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return self.outcomes


def test_units_queued_behind_a_transaction_commit_together(store: Store) -> None:
    sql = _sql_store(store)
    unit = _insert_app(sql)
    before = sql.tally.transactions

    batch = _Batch(sql)
    outcomes = batch.run({f"app{i}": unit(f"app{i}") for i in range(UNITS)})

    assert outcomes["leader0"] == "leader"
    for i in range(UNITS):
        assert outcomes[f"app{i}"] == f"app{i}"
        assert outcomes[f"app{i}:seen"] is True
    # The leaders' own, then the ten in one transaction per leader handing over at most
    # (SQLite: one writer, so exactly 1 + 1).
    assert sql.tally.transactions - before <= 2 * batch.leaders
    assert _apps(sql) == {f"app{i}" for i in range(UNITS)}


def test_a_unit_that_raises_fails_alone(store: Store) -> None:
    sql = _sql_store(store)
    unit = _insert_app(sql)
    sql._group.run(unit("taken"))

    def lease_lost(tx: RawTransaction) -> str:
        unit("written-then-lost")(tx)  # rolled back with the transaction it ran in
        raise errors.LeaseLost("run r is no longer leased by w")

    outcomes = _Batch(sql).run(
        {"a": unit("a"), "dup": unit("taken"), "lost": lease_lost, "b": unit("b")}
    )

    assert isinstance(outcomes["dup"], errors.Conflict)  # the database's own refusal
    assert isinstance(outcomes["lost"], errors.LeaseLost)
    assert outcomes["a"] == "a" and outcomes["b"] == "b"
    assert _apps(sql) == {"taken", "a", "b"}


def test_a_transaction_the_database_breaks_fails_every_unit_in_it(store: Store) -> None:
    """SQLite: a statement on a table that is gone (the schema broken under the store);
    PostgreSQL: a statement the server cancels. No unit of that transaction is committed."""
    sql = _sql_store(store)
    unit = _insert_app(sql)

    if isinstance(sql, PostgresStore):
        dialect = sql.engine.dialect
        timeout = Prepared(select(func.set_config("statement_timeout", "10", True)), dialect)
        slow = Prepared(select(func.pg_sleep(1)), dialect)

        def breaks(tx: RawTransaction) -> None:
            tx.scalars(timeout)
            tx.scalars(slow)  # cancelled by the server (57014), the transaction aborted

    else:
        missing = Prepared(text("DELETE FROM no_such_table"), sql.engine.dialect)

        def breaks(tx: RawTransaction) -> None:
            tx.execute(missing)

    batch = _Batch(sql)
    outcomes = batch.run({"a": unit("a"), "breaks": breaks, "b": unit("b")})

    assert isinstance(outcomes["breaks"], errors.StoreUnavailable), outcomes["breaks"]
    others = {"a": outcomes["a"], "b": outcomes["b"]}
    failed = {name for name, got in others.items() if isinstance(got, errors.StoreUnavailable)}
    committed = {name for name, got in others.items() if got == name}
    assert failed | committed == {"a", "b"}, others
    assert _apps(sql) == committed  # acknowledged ones kept, failed ones not half-written
    if batch.leaders == 1:  # one writer: all three shared the broken transaction
        assert failed == {"a", "b"}
    assert sql._group.run(unit("after")) == "after"  # the store goes on
    assert _apps(sql) == committed | {"after"}


@pytest.mark.parametrize("units", [1, 3])
def test_a_lone_caller_commits_at_once(store: Store, units: int) -> None:
    """No transaction under way: each caller leads its own, one after the other."""
    sql = _sql_store(store)
    unit = _insert_app(sql)
    before = sql.tally.transactions
    for i in range(units):
        assert sql._group.run(unit(f"solo{i}")) == f"solo{i}"
    assert sql.tally.transactions - before == units

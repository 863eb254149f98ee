"""The PostgreSQL store: a connection pool, SKIP LOCKED claims and LISTEN/NOTIFY wake-ups."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import String, bindparam, cast, create_engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection

from stepline import errors
from stepline.store._prepared import Prepared, RawTransaction, Row
from stepline.store.base import RunEnd
from stepline.store.sql import SqlStore

logger = logging.getLogger("stepline.store.postgres")
CHANNEL = "stepline_work"
# Runs ended by a cancel or timeout; the payload is the run id.
ENDED_CHANNEL = "stepline_ended"
# The scheduler leader's advisory lock (an arbitrary constant: "stepline" in ASCII, truncated).
LEADER_LOCK = 0x737465706C696E65
# SQLSTATE classes meaning the server is unreachable, restarting or out of resources.
_UNAVAILABLE_CLASSES = ("08", "57", "53", "58")
_CONFLICT = {"23505", "23P01"}
# A deadlock or serialization failure: run the same transaction again (`GroupCommit`).
_RETRYABLE = {"40P01", "40001"}
_LISTEN_RECONNECT_SECONDS = 1.0
# What a connection closed under us raises (e.g. by a server restart).
_BROKEN = (psycopg.OperationalError, psycopg.InterfaceError)


def classify(error: BaseException, sqlstate: str | None) -> errors.StoreError:
    """A psycopg error as a Stepline store error, by SQLSTATE (never by message)."""
    state = sqlstate or ""
    if state in _CONFLICT:
        return errors.Conflict(str(error))
    if isinstance(error, psycopg.OperationalError) or state[:2] in _UNAVAILABLE_CLASSES:
        return errors.StoreUnavailable(f"PostgreSQL unavailable: {error}")
    if isinstance(error, psycopg.InterfaceError):
        return errors.StoreUnavailable(f"PostgreSQL connection unusable: {error}")
    return errors.StoreError(f"PostgreSQL error {state or '(none)'}: {error}")


class PostgresStore(SqlStore):
    """Store on PostgreSQL (psycopg 3, pooled).

    Workers wake on `NOTIFY stepline_work`, sent inside the transaction that makes work
    available (so delivered at its commit), instead of polling; `NOTIFY stepline_ended` tells
    every process's workers which runs a cancel or timeout ended. A connection that breaks is
    discarded and replaced on the next use, so the store recovers by itself after a restart;
    a hot-path transaction whose connection is found broken at its BEGIN starts again on a
    fresh one, so the first transactions after a restart succeed.

    Args:
        url: `postgresql://user:password@host:port/db`.
        pool_size: Connections kept open; as many more are opened under load.
    """

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        parsed = make_url(url).set(drivername="postgresql+psycopg")
        options: dict[str, Any] = {"pool_timeout": 60, "connect_args": {"connect_timeout": 5}}
        # Reads and rare writes (API answers, registration): each checkout is pinged, so a
        # connection broken by a restart is replaced instead of failing someone's request.
        engine = create_engine(
            parsed, pool_size=2, max_overflow=pool_size, pool_pre_ping=True, **options
        )
        super().__init__(engine)
        # The hot path's own pool, without the ping (a round trip per step). Its connections
        # are in autocommit mode so that `_begun` sends BEGIN itself, where psycopg would send
        # it implicitly before the first statement (the same round trip): a connection broken
        # by a restart is found there, before any of the transaction ran, and replaced.
        self._hot = create_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=pool_size,
            isolation_level="AUTOCOMMIT",
            **options,
        )
        self._dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self._notify = Prepared(select(func.pg_notify(CHANNEL, "")), engine.dialect)
        ended = func.pg_notify(ENDED_CHANNEL, bindparam("run_id", type_=String))
        self._notify_ended = Prepared(select(ended), engine.dialect)
        key_hash = func.hashtextextended(bindparam("key"), 0)
        self._lock_key = Prepared(select(func.pg_advisory_xact_lock(key_hash)), engine.dialect)
        snapshot = cast(func.pg_current_snapshot(), String).label("mark")
        self._snapshot = Prepared(select(snapshot), engine.dialect)
        self._listener: threading.Thread | None = None
        self._closing = threading.Event()

    @contextmanager
    def _raw_connection(self) -> Iterator[Any]:
        with self._using(self._begun()) as connection:
            yield connection

    @contextmanager
    def _using(self, fairy: PoolProxiedConnection) -> Iterator[Any]:
        """The checked-out connection's driver connection, given back to the pool after use.

        A deadlock or serialization failure is an OperationalError too, on a connection that
        still works: only a closed one means a restart broke its siblings as well (`_discard`),
        whatever error was raised.
        """
        try:
            yield fairy.dbapi_connection
        except BaseException:  # (a group commit's unit raises its own error over a broken one)
            if fairy.dbapi_connection is None or fairy.dbapi_connection.closed:
                self._discard(fairy)
            raise
        finally:
            fairy.close()

    def _begun(self) -> PoolProxiedConnection:
        """A hot-pool connection with a transaction begun.

        A restart closes every pooled connection, and the first use of each finds out. When
        that use is our BEGIN, nothing of the transaction exists yet (not even on the server),
        so it is begun once more on a fresh connection of the renewed pool: safe, and it
        spares the caller a `StoreUnavailable` (a 503 at intake, a step run twice on a
        worker). A failure to connect, or a second broken connection, is raised.
        """
        fairy = self._hot.raw_connection()
        try:
            self._begin(fairy)
        except _BROKEN:
            fairy = self._hot.raw_connection()
            self._begin(fairy)
        return fairy

    def _begin(self, fairy: PoolProxiedConnection) -> None:
        """BEGIN on a checked-out connection; if that fails, give the connection back."""
        connection: Any = fairy.dbapi_connection
        try:
            connection.execute("BEGIN")
        except BaseException as exc:
            if isinstance(exc, _BROKEN):
                self._discard(fairy)
            fairy.close()
            raise

    def _read_first(self, statement: Prepared, params: Mapping[str, Any]) -> Row | None:
        """On a hot-pool connection (autocommit): the query alone, one round trip.

        The readers' pool would add a ping, BEGIN and ROLLBACK (four round trips). A read is
        safe to repeat, so one a restart broke is run once more on a fresh connection.
        """
        try:
            return self._first_on_hot(statement, params)
        except _BROKEN:
            return self._first_on_hot(statement, params)

    def _first_on_hot(self, statement: Prepared, params: Mapping[str, Any]) -> Row | None:
        with self._using(self._hot.raw_connection()) as connection:
            return RawTransaction(connection).first(statement, **params)

    def change_mark(self) -> object:
        """The server's current snapshot (xmin:xmax:in-progress ids).

        It changes whenever a writing transaction anywhere on the server begins or ends; no
        table is read.
        """
        row = self._quick_read(self._snapshot)
        return None if row is None else row["mark"]

    def _discard(self, fairy: PoolProxiedConnection) -> None:
        """Drop a broken connection and renew the pool: a restart broke its idle siblings too."""
        fairy.invalidate()
        self._hot.dispose()  # its idle connections closed (no warning left for the GC)

    def _announce(self, tx: RawTransaction) -> None:
        tx.execute(self._notify)

    def _ended(self, tx: RawTransaction, end: RunEnd) -> None:
        super()._ended(tx, end)
        tx.execute(self._notify_ended, run_id=end.run_id)

    def _lock_slot_keys(self, tx: RawTransaction, keys: Sequence[str]) -> None:
        """Transaction advisory locks on the keys (sorted, so two claims cannot deadlock)."""
        for key in sorted(keys):
            tx.scalars(self._lock_key, key=key)

    def _translate_driver(self, error: Exception) -> errors.StoreError:
        return classify(error, getattr(error, "sqlstate", None))

    def _retryable(self, error: BaseException) -> bool:
        """A deadlock or serialization failure: nothing of the transaction was kept."""
        return getattr(error, "sqlstate", None) in _RETRYABLE

    def _translate(self, error: DBAPIError) -> errors.StoreError:
        if error.connection_invalidated:
            return errors.StoreUnavailable(f"PostgreSQL unavailable: {error.orig}")
        return classify(error.orig or error, getattr(error.orig, "sqlstate", None))

    def add_wakeup(self, callback: Callable[[], None]) -> None:
        """Call `callback` when any process makes work available (LISTEN on a connection)."""
        super().add_wakeup(callback)
        self._start_listening()

    def add_end_listener(self, callback: Callable[[list[str]], None]) -> None:
        """Call `callback(run_ids)` when any process ended runs by a cancel or timeout."""
        super().add_end_listener(callback)
        self._start_listening()

    def _start_listening(self) -> None:
        if self._listener is None:
            self._listener = threading.Thread(
                target=self._listen, name="stepline-listen", daemon=True
            )
            self._listener.start()

    def _listen(self) -> None:
        while not self._closing.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    conn.execute(f"LISTEN {ENDED_CHANNEL}")
                    self._wake()  # work may have appeared while nobody listened
                    while not self._closing.is_set():
                        for note in conn.notifies(timeout=0.25, stop_after=64):
                            if note.channel == ENDED_CHANNEL:
                                self._tell_ended([note.payload])
                            else:
                                self._wake()
            except psycopg.Error as exc:
                logger.warning("LISTEN connection lost, reconnecting: %s", exc)
                self._closing.wait(_LISTEN_RECONNECT_SECONDS)

    def leader_lock(self) -> LeaderLock:
        """The scheduler-leader lock: one holder at a time across all processes."""
        return LeaderLock(self._dsn)

    def close(self) -> None:
        """Stop listening and release connections."""
        self._closing.set()
        if self._listener is not None:
            self._listener.join(timeout=3)
        self._hot.dispose()
        super().close()


class LeaderLock:
    """A session advisory lock held on a dedicated connection.

    If the holder dies, PostgreSQL drops its session and the lock with it, so another process
    takes over at its next attempt.
    """

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: psycopg.Connection[Any] | None = None

    def acquire(self) -> bool:
        """Hold the lock (True), or learn that another process holds it (False)."""
        try:
            if self._conn is not None and not self._conn.closed:
                self._conn.execute("SELECT 1")  # still alive, so still holding it
                return True
            self._conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=5)
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()
            held = bool(row and row[0])
        except psycopg.Error as exc:
            logger.warning("scheduler leader lock unavailable: %s", exc)
            self.release()
            return False
        if not held:
            self.release()
        return held

    def release(self) -> None:
        """Give the lock up (closing the session releases it)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

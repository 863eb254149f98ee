"""The PostgreSQL store: a connection pool, SKIP LOCKED claims and LISTEN/NOTIFY wake-ups."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from sqlalchemy import Connection, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from stepline import errors
from stepline.store.sql import SqlStore

logger = logging.getLogger("stepline.store.postgres")
CHANNEL = "stepline_work"
# SQLSTATE classes that mean "the server went away or is restarting": retry later.
_UNAVAILABLE_CLASSES = ("08", "57", "53")
_CONFLICT = {"23505", "23P01"}
_LISTEN_RECONNECT_SECONDS = 1.0


def _sqlstate(error: DBAPIError) -> str:
    return getattr(error.orig, "sqlstate", None) or ""


class PostgresStore(SqlStore):
    """Store on PostgreSQL (psycopg 3, pooled).

    Workers wake on `NOTIFY stepline_work`, sent inside the transaction that makes work
    available (delivered at commit), so no step waits for a poll interval.

    Args:
        url: `postgresql://user@host:port/db` (the psycopg driver is selected automatically).
        pool_size: Connections kept open; as many more may be opened under load.
    """

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        parsed = make_url(url).set(drivername="postgresql+psycopg")
        engine = create_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            pool_timeout=60,
        )
        super().__init__(engine)
        self._dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self._listener: threading.Thread | None = None
        self._closing = threading.Event()

    def _signal(self, conn: Connection) -> None:
        conn.exec_driver_sql(f"NOTIFY {CHANNEL}")

    def _translate(self, error: DBAPIError) -> errors.StoreError:
        state = _sqlstate(error)
        if state in _CONFLICT:
            return errors.Conflict(str(error.orig))
        if error.connection_invalidated or state[:2] in _UNAVAILABLE_CLASSES or not state:
            return errors.StoreUnavailable(f"PostgreSQL unavailable: {error.orig}")
        return errors.StoreError(f"PostgreSQL error {state}: {error.orig}")

    def add_wakeup(self, callback: Callable[[], None]) -> None:
        """Call `callback` when any process makes work available (LISTEN on a connection)."""
        super().add_wakeup(callback)
        if self._listener is None:
            self._listener = threading.Thread(
                target=self._listen, name="stepline-listen", daemon=True
            )
            self._listener.start()

    def _listen(self) -> None:
        while not self._closing.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._wake()  # work may have appeared while we were not listening
                    while not self._closing.is_set():
                        for _ in conn.notifies(timeout=0.25, stop_after=64):
                            self._wake()
                            break
            except psycopg.Error as exc:
                logger.warning("LISTEN connection lost, reconnecting: %s", exc)
                self._closing.wait(_LISTEN_RECONNECT_SECONDS)

    def try_lock(self, conn: Any, key: int) -> bool:
        """Take the session advisory lock `key` on `conn` without waiting."""
        return bool(conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0])

    def close(self) -> None:
        """Stop listening and release connections."""
        self._closing.set()
        if self._listener is not None:
            self._listener.join(timeout=3)
        super().close()


__all__ = ["PostgresStore", "pg_errors"]

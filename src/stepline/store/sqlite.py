"""The SQLite store: one file in WAL mode, one writer at a time, many readers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.pool import QueuePool

from stepline import errors
from stepline.store.sql import SqlStore

Synchronous = Literal["NORMAL", "FULL"]


def _engine(path: Path, *, begin: str, pool_size: int, synchronous: Synchronous) -> Engine:
    engine = create_engine(
        f"sqlite+pysqlite:///{path}",
        # Python's sqlite3 must not open transactions itself; the "begin" hook below does.
        connect_args={"check_same_thread": False, "isolation_level": None, "timeout": 30},
        poolclass=QueuePool,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=600,
        # Every transaction ends in COMMIT or ROLLBACK already; skip the extra reset.
        pool_reset_on_return=None,
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # Readers never block the writer and the writer never blocks readers.
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a commit survives any process crash; an OS crash may lose the last commits.
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        # Another process holding the write lock makes us wait, not fail.
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.execute("PRAGMA cache_size=-32000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine


class SqliteStore(SqlStore):
    """Store on a SQLite file.

    Writes go through one connection that starts every transaction with BEGIN IMMEDIATE, so
    writers in this process queue on the pool instead of spinning on SQLITE_BUSY, and writers in
    other processes wait on the busy timeout. Reads use a pool of their own.

    Args:
        path: The database file; its folder is created if missing.
        synchronous: "NORMAL" (default) or "FULL" (fsync at every commit; survives power loss).
    """

    def __init__(self, path: str | Path, *, synchronous: Synchronous = "NORMAL") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        writer = _engine(self.path, begin="BEGIN IMMEDIATE", pool_size=1, synchronous=synchronous)
        super().__init__(writer)
        self._reader = _engine(self.path, begin="BEGIN", pool_size=8, synchronous=synchronous)

    def _read_connection(self) -> Any:
        return self._reader.connect()

    def _translate(self, error: DBAPIError) -> errors.StoreError:
        if isinstance(error, IntegrityError):
            return errors.Conflict(str(error.orig))
        if isinstance(error, OperationalError) and "locked" in str(error.orig):
            return errors.StoreUnavailable(f"database {self.path} is locked: {error.orig}")
        return errors.StoreUnavailable(f"database {self.path}: {error.orig}")

    def close(self) -> None:
        """Release connections."""
        super().close()
        self._reader.dispose()

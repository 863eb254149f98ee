"""The SQLite store: one file in WAL mode, one writer at a time, many readers."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool, StaticPool

from stepline import errors
from stepline.store._writer_lock import WriterLock
from stepline.store.sql import SqlStore
from stepline.store.tally import count_statements

Synchronous = Literal["NORMAL", "FULL"]
# UPDATE ... RETURNING (claims, heartbeats) arrived in SQLite 3.35.
MIN_SQLITE = (3, 35, 0)


def _require_returning() -> None:
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        raise errors.ConfigurationError(
            f"SQLite {sqlite3.sqlite_version} is too old: Stepline needs 3.35 or newer "
            "(for RETURNING); use a Python built with a newer SQLite, or PostgreSQL"
        )


def _engine(path: Path, *, begin: str, synchronous: Synchronous, **pool: Any) -> Engine:
    engine = create_engine(
        f"sqlite+pysqlite:///{path}",
        # Python's sqlite3 must not open transactions itself; the "begin" hook below does.
        connect_args={"check_same_thread": False, "isolation_level": None, "timeout": 30},
        # Every transaction ends in COMMIT or ROLLBACK already; skip the extra reset.
        pool_reset_on_return=None,
        **pool,
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

    All writes of this process go through one connection, one transaction at a time, each
    starting with BEGIN IMMEDIATE under a `WriterLock`: writers of this process, and the
    Stepline processes sharing the file, take turns on it instead of spinning on SQLITE_BUSY
    (`<path>.writer-lock` beside the file). Reads use a pool of their own.

    Large outputs' bytes (`store/blobs.py`) are files in the folder `<path>.blobs` beside it.

    Args:
        path: The database file; its folder is created if missing.
        synchronous: "NORMAL" (default) or "FULL" (fsync at every commit; survives power loss).

    Raises:
        ConfigurationError: if Python's SQLite is older than 3.35 (no RETURNING).
    """

    prune_write_seconds = 0.005  # a prune batch holds the write lock: keep it short

    def __init__(self, path: str | Path, *, synchronous: Synchronous = "NORMAL") -> None:
        _require_returning()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # StaticPool: the writer engine has exactly one connection, which the hot path also
        # uses raw; `_write_lock` gives it to one transaction at a time.
        writer = _engine(
            self.path, begin="BEGIN IMMEDIATE", synchronous=synchronous, poolclass=StaticPool
        )
        super().__init__(writer)
        self._blob_dir = self.path.with_name(f"{self.path.name}.blobs")
        self._write_lock = WriterLock(self.path.with_name(f"{self.path.name}.writer-lock"))
        self._writer_connection: Any = None
        self._mark_lock = threading.Lock()
        self._mark_connection: sqlite3.Connection | None = None  # `change_mark`'s
        self._reader = _engine(
            self.path,
            begin="BEGIN",
            synchronous=synchronous,
            poolclass=QueuePool,
            pool_size=8,
            max_overflow=0,
            pool_timeout=600,
        )
        count_statements(self._reader, self.tally)

    @contextmanager
    def _raw_connection(self) -> Iterator[Any]:
        with self._write_lock:
            connection = self._writer()
            # Take the write lock now, not at the first write: no deadlock-prone lock
            # upgrade, and the transaction reads the latest commit of every process.
            connection.execute("BEGIN IMMEDIATE")
            yield connection

    def _writer(self) -> Any:
        """The writer's driver connection, kept: a pool checkout costs more than a commit.

        The static pool keeps it open when given back; `close()` closes it.
        """
        if self._writer_connection is None:
            fairy = self.engine.raw_connection()
            self._writer_connection = fairy.dbapi_connection
            fairy.close()
        return self._writer_connection

    @contextmanager
    def _write_transaction(self) -> Iterator[Connection]:
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    def _read_connection(self) -> Any:
        return self._reader.connect()

    def change_mark(self) -> object:
        """`PRAGMA data_version` on a connection of its own, which never writes.

        It changes with every commit of any other connection, this process's writer included.
        """
        with self._mark_lock:
            if self._mark_connection is None:
                self._mark_connection = sqlite3.connect(self.path, check_same_thread=False)
            [version] = self._mark_connection.execute("PRAGMA data_version").fetchone()
        self.tally.ran(1)
        return version

    def upgrade(self) -> None:
        """Apply pending schema migrations."""
        with self._write_lock:
            super().upgrade()

    def _translate_driver(self, error: Exception) -> errors.StoreError:
        if isinstance(error, sqlite3.IntegrityError):
            return errors.Conflict(str(error))
        if isinstance(error, sqlite3.OperationalError):
            if "locked" in str(error):
                return errors.StoreUnavailable(f"database {self.path} is locked: {error}")
            return errors.StoreUnavailable(f"database {self.path}: {error}")
        return errors.StoreError(f"database {self.path}: {error}")

    def _translate(self, error: DBAPIError) -> errors.StoreError:
        # Both write paths classify the driver's own exception the same way.
        return self._translate_driver(error.orig if error.orig is not None else error)

    def close(self) -> None:
        """Release connections."""
        super().close()
        self._writer_connection = None
        self._reader.dispose()
        self._write_lock.close()
        with self._mark_lock:
            if self._mark_connection is not None:
                self._mark_connection.close()
                self._mark_connection = None

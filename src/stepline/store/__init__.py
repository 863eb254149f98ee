"""Durable state: the Store protocol, its records, and the SQLite and PostgreSQL stores."""

from __future__ import annotations

from pathlib import Path

from stepline import errors
from stepline.store.base import Store


def is_postgres(db: str | Path) -> bool:
    """Whether `db` names a PostgreSQL database (else a SQLite file, or a mistake)."""
    return str(db).startswith(("postgresql://", "postgres://", "postgresql+psycopg://"))


def open_store(db: str | Path) -> Store:
    """Open a store from a SQLite path, a `sqlite:///path` URL or a `postgresql://` URL."""
    text = str(db)
    if is_postgres(text):
        from stepline.store.postgres import PostgresStore

        return PostgresStore(text)
    if "://" in text and not text.startswith("sqlite:///"):
        raise errors.ConfigurationError(
            f"unsupported database URL {text!r}; give a file path, sqlite:///path or "
            "postgresql://user@host/db"
        )
    from stepline.store.sqlite import SqliteStore

    return SqliteStore(text.removeprefix("sqlite:///"))

"""Durable state: the Store protocol, its records, and the SQLite and PostgreSQL stores."""

from __future__ import annotations

from pathlib import Path

from stepline import errors
from stepline.store.base import Store


def open_store(db: str | Path) -> Store:
    """Open a store from a SQLite path, a `sqlite:///path` URL or a `postgresql://` URL."""
    text = str(db)
    if text.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        from stepline.store.postgres import PostgresStore

        return PostgresStore(text)
    if "://" in text and not text.startswith("sqlite:///"):
        raise errors.ConfigurationError(
            f"unsupported database URL {text!r}; give a file path, sqlite:///path or "
            "postgresql://user@host/db"
        )
    from stepline.store.sqlite import SqliteStore

    return SqliteStore(text.removeprefix("sqlite:///"))

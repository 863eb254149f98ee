"""Durable state: the Store protocol, its records, and the SQLite and PostgreSQL stores."""

from __future__ import annotations

from pathlib import Path

from stepline import errors
from stepline.store.base import Store


def open_store(db: str | Path) -> Store:
    """Open a store from a SQLite path, a `sqlite:///path` URL or a `postgresql://` URL."""
    text = str(db)
    if text.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        raise errors.ConfigurationError(
            "PostgreSQL is not supported by this version yet; use a SQLite path"
        )
    if "://" in text and not text.startswith("sqlite:///"):
        raise errors.ConfigurationError(
            f"unsupported database URL {text!r}; give a file path or sqlite:///path"
        )
    from stepline.store.sqlite import SqliteStore

    return SqliteStore(text.removeprefix("sqlite:///"))

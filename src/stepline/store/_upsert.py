"""`INSERT ... ON CONFLICT DO NOTHING` for the dialect at hand (both stores support it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect


def insert_if_absent(dialect: Dialect, table: Table) -> Any:
    """An INSERT that does nothing when the row's key exists: to create a row before locking it.

    With `SELECT ... FOR UPDATE` after it, concurrent transactions serialize on the row instead
    of one of them failing on the unique key.
    """
    module: Any = postgresql if dialect.name == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing()

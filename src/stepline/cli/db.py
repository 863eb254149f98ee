"""`stepline db`: manage the database schema."""

from __future__ import annotations

from pathlib import Path

import click

from stepline.engine.engine import DEFAULT_DB
from stepline.store import open_store


@click.group()
def db() -> None:
    """Manage the database schema."""


@db.command()
@click.option(
    "--db",
    "database",
    envvar="STEPLINE_DB",
    default=str(DEFAULT_DB),
    show_default=True,
    show_envvar=True,
    help="SQLite file, or a sqlite:/// or postgresql:// URL.",
)
def upgrade(database: str) -> None:
    """Apply pending migrations to the database (creating it if needed); prints the revision."""
    # Imported here: Alembic is slow to import and only this command needs it.
    from stepline.store.migrate import head

    store = open_store(Path(database) if "://" not in database else database)
    try:
        store.upgrade()
    finally:
        store.close()
    click.echo(f"{database}: schema at revision {head()}")

"""Apply and check schema migrations (Alembic scripts in `migrations/`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from stepline import errors

_SCRIPTS = Path(__file__).parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


def head() -> str:
    """The newest revision this version of Stepline knows."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None  # the package ships at least one migration
    return revision


def current(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest revision; safe to run concurrently and repeatedly."""
    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def check(engine: Engine) -> None:
    """Raise `SchemaOutOfDate` unless the database is at the newest revision."""
    at = current(engine)
    if at != head():
        raise errors.SchemaOutOfDate(
            f"database schema is at {at or 'nothing'}, this Stepline needs {head()}; "
            "run `stepline db upgrade`"
        )

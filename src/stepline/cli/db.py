"""`stepline db`: manage the database schema, and prune old runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from stepline import errors
from stepline._durations import parse_duration
from stepline.engine import retention
from stepline.engine.engine import DEFAULT_DB
from stepline.store import open_store
from stepline.store.pruning import PrunePass

db_option = click.option(
    "--db",
    "database",
    envvar="STEPLINE_DB",
    default=str(DEFAULT_DB),
    show_default=True,
    show_envvar=True,
    help="SQLite file, or a sqlite:/// or postgresql:// URL.",
)


@click.group()
def db() -> None:
    """Manage the database schema, and prune old runs."""


@db.command()
@db_option
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


def _older_than(ctx: click.Context, param: click.Parameter, value: str) -> timedelta:
    try:
        return parse_duration(value, field="--older-than")
    except errors.InvalidInput as exc:
        raise click.BadParameter(exc.reason, ctx, param) from None


@db.command()
@db_option
@click.option(
    "--older-than",
    envvar="STEPLINE_PRUNE_OLDER_THAN",
    required=True,
    show_envvar=True,
    metavar="DURATION",
    callback=_older_than,
    help="Remove the runs that ended more than this long ago, e.g. 30d or 12h.",
)
@click.option(
    "--function",
    "function_id",
    envvar="STEPLINE_PRUNE_FUNCTION",
    show_envvar=True,
    help="Only this function's runs (with the runs they started); events no run refers to "
    "are then kept.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    envvar="STEPLINE_PRUNE_DRY_RUN",
    show_envvar=True,
    help="Count what would be removed; remove nothing.",
)
def prune(database: str, older_than: timedelta, function_id: str | None, dry_run: bool) -> None:
    """Remove ended runs older than --older-than, whatever their retention; prints the count.

    With each run go its steps, attempts, log lines and the events only it refers to. It works
    in batches of 100 runs, one short transaction each, pausing between them, so the engine
    can go on working meanwhile. A run started by another run (invoke, parallel branch) goes
    with that run, never before it; a run whose started runs are still active is kept. Events
    sent to nobody go too (without --function). The scheduler prunes by each function's
    retention on its own (`--retain`); this is for a one-off clean-up.
    """
    store = open_store(Path(database) if "://" not in database else database)
    try:
        store.check_schema()
        now = datetime.now(UTC)
        rule = retention.older_than_rule(older_than, now, function_id)
        progress = PrunePass(rule=rule, dry_run=dry_run)
        counts = retention.prune(store, progress, retention.RetentionSettings().pacing(store))
    finally:
        store.close()
    whose = f"of {function_id} " if function_id else ""
    cutoff = f"{now - older_than:%Y-%m-%d %H:%M:%S} UTC"
    verb = "Would remove" if dry_run else "Removed"
    click.echo(f"{verb} {counts.text()} (runs {whose}that ended before {cutoff}).")

"""`stepline dev`: engine, worker, scheduler and server in one process on SQLite."""

from __future__ import annotations

import click

from stepline.cli._secrets import Secrets, auth_settings
from stepline.cli._serve import configure_logging, serve, serve_options
from stepline.cli.apps import load_app
from stepline.engine.engine import DEFAULT_DB, Engine, EngineSettings
from stepline.engine.worker import WorkerSettings
from stepline.sdk.app import App
from stepline.server.app import create_app


@click.command()
@click.argument("apps", nargs=-1)
@click.option(
    "--db",
    envvar="STEPLINE_DB",
    default=str(DEFAULT_DB),
    show_default=True,
    show_envvar=True,
    help="SQLite file (or a sqlite:/// or postgresql:// URL).",
)
@click.option(
    "--workers",
    "slots",
    envvar="STEPLINE_WORKER_SLOTS",
    default=8,
    show_default=True,
    type=click.IntRange(1, 256),
    show_envvar=True,
    help="Runs executed at once.",
)
@serve_options
def dev(
    apps: tuple[str, ...],
    db: str,
    slots: int,
    host: str,
    port: int,
    secrets: Secrets,
) -> None:
    """Run APPS (module:attr or file.py) with engine, scheduler and server in one process.

    Migrations are applied automatically. Open (no keys) on loopback only.
    """
    auth = auth_settings(host, secrets, dev=True, open_allowed=True)
    loaded: list[App] = [app for spec in apps for app in load_app(spec)]
    settings = EngineSettings(worker=WorkerSettings(slots=slots))
    engine = Engine(loaded, db=db, settings=settings)
    functions = ", ".join(sorted(engine.functions)) or "none"
    click.echo(f"Stepline dev: http://{host}:{port}  db={db}  functions: {functions}")
    configure_logging()
    engine.start()
    try:
        serve(create_app(engine.operations, auth), host, port)
    finally:
        engine.stop()

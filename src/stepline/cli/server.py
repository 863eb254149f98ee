"""`stepline server`: event intake, REST API and dashboard, without executing runs."""

from __future__ import annotations

import click

from stepline.cli._secrets import Secrets, auth_settings
from stepline.cli._serve import configure_logging, serve, serve_options
from stepline.engine.operations import Operations
from stepline.server.app import create_app
from stepline.store import open_store


@click.command()
@click.option(
    "--db",
    envvar="STEPLINE_DB",
    required=True,
    show_envvar=True,
    help="Database URL (postgresql://user@host/db) or SQLite file.",
)
@click.option(
    "--insecure",
    is_flag=True,
    envvar="STEPLINE_INSECURE",
    show_envvar=True,
    help="Run without event keys and API token (loopback only).",
)
@serve_options
def server(
    db: str,
    insecure: bool,
    host: str,
    port: int,
    secrets: Secrets,
) -> None:
    """Serve intake, API and dashboard for the workers sharing DB (run `stepline worker`).

    Event keys and the API token are required (at least 16 characters each, the token unlike
    every key); give them as files or environment variables to keep them out of `ps`.
    """
    auth = auth_settings(host, secrets, dev=False, open_allowed=insecure)
    store = open_store(db)
    store.check_schema()
    configure_logging()
    click.echo(f"Stepline server: http://{host}:{port}")
    try:
        serve(create_app(Operations(store), auth), host, port)
    finally:
        store.close()

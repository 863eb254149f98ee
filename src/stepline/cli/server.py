"""`stepline server`: event intake, REST API and dashboard, without executing runs."""

from __future__ import annotations

import click

from stepline.cli._serve import auth_settings, configure_logging, serve, serve_options
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
    event_keys: tuple[str, ...],
    api_token: str | None,
) -> None:
    """Serve intake, API and dashboard for the workers sharing DB (run `stepline worker`)."""
    auth = auth_settings(host, event_keys, api_token, open_allowed=insecure)
    store = open_store(db)
    store.check_schema()
    configure_logging()
    click.echo(f"Stepline server: http://{host}:{port}")
    try:
        serve(create_app(Operations(store), auth), host, port)
    finally:
        store.close()

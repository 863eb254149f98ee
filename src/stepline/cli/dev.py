"""`stepline dev`: engine, worker, scheduler and server in one process on SQLite."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

import click
import uvicorn

from stepline import errors
from stepline.cli.apps import load_app
from stepline.engine.engine import DEFAULT_DB, Engine, EngineSettings
from stepline.engine.worker import WorkerSettings
from stepline.sdk.app import App
from stepline.server.app import create_app
from stepline.server.auth import AuthSettings


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost"."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.argument("apps", nargs=-1)
@click.option(
    "--db",
    envvar="STEPLINE_DB",
    default=str(DEFAULT_DB),
    show_default=True,
    show_envvar=True,
    help="SQLite file (or sqlite:/// URL).",
)
@click.option(
    "--host",
    envvar="STEPLINE_HOST",
    default="127.0.0.1",
    show_default=True,
    show_envvar=True,
    help="Address to listen on.",
)
@click.option(
    "--port",
    envvar="STEPLINE_PORT",
    default=8288,
    show_default=True,
    type=int,
    show_envvar=True,
    help="Port to listen on.",
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
@click.option(
    "--event-key",
    envvar="STEPLINE_EVENT_KEY",
    default=None,
    show_envvar=True,
    help="Require this event key at /e/{key}.",
)
@click.option(
    "--api-token",
    envvar="STEPLINE_API_TOKEN",
    default=None,
    show_envvar=True,
    help="Require this bearer token on /v1.",
)
def dev(
    apps: tuple[str, ...],
    db: str,
    host: str,
    port: int,
    slots: int,
    event_key: str | None,
    api_token: str | None,
) -> None:
    """Run APPS (module:attr or file.py) with engine, scheduler and server in one process."""
    if not is_loopback(host) and not (event_key and api_token):
        raise errors.ConfigurationError(
            f"refusing to listen on {host} without --event-key and --api-token; "
            "dev is open only on loopback"
        )
    loaded: list[App] = [app for spec in apps for app in load_app(spec)]
    settings = EngineSettings(worker=WorkerSettings(slots=slots))
    engine = Engine(loaded, db=Path(db) if "://" not in db else db, settings=settings)
    auth = AuthSettings(event_keys=(event_key,) if event_key else (), api_token=api_token)
    server = create_app(engine.operations, auth)
    functions = ", ".join(sorted(engine.functions)) or "none"
    click.echo(f"Stepline dev: http://{host}:{port}  db={db}  functions: {functions}")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("alembic", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    engine.start()
    try:
        uvicorn.run(server, host=host, port=port, log_level="warning")
    finally:
        engine.stop()

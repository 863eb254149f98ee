"""`stepline server`: event intake, REST API and dashboard, without executing runs."""

from __future__ import annotations

from dataclasses import replace

import click

from stepline import errors
from stepline._retention import Retention
from stepline.cli._retain import retain_option
from stepline.cli._sdk import sdk_urls_option, signing_options
from stepline.cli._secrets import Secrets, auth_settings
from stepline.cli._serve import configure_logging, listen, local_url, serve, serve_options
from stepline.engine.inngest.poller import AppPoller
from stepline.engine.inngest.signing import SigningKeys
from stepline.engine.inngest.sync import syncer_for
from stepline.engine.operations import Operations
from stepline.server.app import create_app
from stepline.server.rate_limit import IntakeLimit, KeyBuckets
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
@click.option(
    "--intake-rate-limit",
    envvar="STEPLINE_INTAKE_RATE_LIMIT",
    default=None,
    show_envvar=True,
    help='Requests each event key may send to /e/, e.g. "50/s" or "600/m,burst=100"; '
    "beyond, 429 with Retry-After. Default: no limit.",
)
@retain_option("Shown on the dashboard: give the workers' value.")
@sdk_urls_option
@serve_options
@signing_options
def server(
    db: str,
    insecure: bool,
    intake_rate_limit: str | None,
    retain: Retention,
    sdk_urls: tuple[str, ...],
    host: str,
    port: int,
    secrets: Secrets,
    signing_keys: SigningKeys | None,
) -> None:
    """Serve intake, API and dashboard for the workers sharing DB (run `stepline worker`).

    Event keys and the API token are required (at least 16 characters each, the token unlike
    every key), unless the database holds named tokens (`stepline tokens create`); give them
    as files or environment variables to keep them out of `ps`. Inngest
    SDK apps sync here and authenticate with the signing key (`--signing-key`).
    """
    limit = _intake_limit(intake_rate_limit)
    store = open_store(db)
    store.check_schema()
    named = any(not token.revoked for token in store.list_credentials("token"))
    auth = replace(
        auth_settings(host, secrets, dev=False, open_allowed=insecure, named=named),
        signing_keys=signing_keys,
        intake_limit=KeyBuckets(limit) if limit else None,
    )
    sock = listen(host, port)
    configure_logging()
    click.echo(f"Stepline server: http://{host}:{port}")
    operations = Operations(store, retention=retain)
    poller = AppPoller(
        syncer_for(operations, signing_keys), sdk_urls, server_url=local_url(host, port)
    )
    poller.start()

    def stop() -> None:
        poller.stop()
        store.close()

    serve(create_app(operations, auth), sock, stop)


def _intake_limit(text: str | None) -> IntakeLimit | None:
    """`--intake-rate-limit`, read; a bad value is a usage error naming the option."""
    if not text:
        return None
    try:
        return IntakeLimit.parse(text)
    except errors.InvalidInput as exc:
        raise click.BadParameter(str(exc), param_hint="--intake-rate-limit") from None

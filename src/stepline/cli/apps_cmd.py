"""`stepline apps`: list the apps (Python and Inngest SDK), and sync an SDK app by its URL."""

from __future__ import annotations

import json
from typing import Any

import click
from rich import box
from rich.table import Table
from rich.text import Text

from stepline.cli import _format
from stepline.cli._connect import output_options, print_table, with_client
from stepline.client import Client


@click.group(invoke_without_command=True)
@output_options
@with_client
@click.pass_context
def apps(ctx: click.Context, client: Client, as_json: bool) -> None:
    """List the apps and their functions; `apps sync URL` syncs an Inngest SDK app."""
    if ctx.invoked_subcommand is not None:
        return
    found = client.list_apps()
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    print_table(_apps_table(found))


def _apps_table(found: list[dict[str, Any]]) -> Table:
    table = Table("app", "kind", "sdk", "url", "last sync", "functions", box=box.SIMPLE_HEAD)
    for app in found:
        functions = ", ".join(app["functions"])
        table.add_row(
            app["id"],
            app["kind"],
            app["sdk"] or "-",
            app["url"] or "-",
            _format.moment(app["synced_at"]),
            Text(functions) if functions else Text("none", style="dim"),
        )
    return table


@apps.command("sync")
@click.argument("app_url", metavar="URL")
@output_options
@with_client
def sync(client: Client, app_url: str, as_json: bool) -> None:
    """Sync (or re-sync) the Inngest SDK app served at URL.

    URL is where the app serves its SDK, e.g. http://localhost:3000/api/inngest. Prints the
    app's id and how many functions it has; exits 2 with the reason if the app could not be
    reached or refused.
    """
    app = client.sync_app(app_url)
    if as_json:
        click.echo(json.dumps(app, indent=2))
        return
    count = len(app["functions"])
    noun = "function" if count == 1 else "functions"
    click.echo(f"synced app {app['id']}: {count} {noun} ({app['url']})")

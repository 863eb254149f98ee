"""`stepline workers`: the workers sharing the database, their capacity and liveness."""

from __future__ import annotations

import json

import click
from rich import box
from rich.table import Table

from stepline.cli import _format
from stepline.cli._connect import console, json_option, with_client
from stepline.client import Client


@click.command()
@json_option
@with_client
def workers(client: Client, as_json: bool) -> None:
    """List workers: capacity, runs in flight, last heartbeat, and whether they claim work."""
    found = client.workers()
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    table = Table(
        "worker", "state", "in flight", "slots", "last heartbeat", "functions", box=box.SIMPLE_HEAD
    )
    for worker in found:
        state = "stopping" if worker["stopping"] else ("alive" if worker["alive"] else "stale")
        table.add_row(
            worker["id"],
            state,
            str(worker["inflight"]),
            str(worker["slots"]),
            _format.moment(worker["heartbeat_at"]),
            ", ".join(worker["functions"]),
        )
    console().print(table)

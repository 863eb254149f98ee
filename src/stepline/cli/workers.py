"""`stepline workers`: the workers sharing the database, their capacity and liveness."""

from __future__ import annotations

import json
from typing import Any

import click
from rich import box
from rich.table import Table

from stepline.cli import _format
from stepline.cli._connect import output_options, print_table, with_client
from stepline.client import Client
from stepline.engine import views


@click.command()
@output_options
@with_client
def workers(client: Client, as_json: bool) -> None:
    """List workers: capacity, runs in flight, last heartbeat, and whether they claim work.

    A worker with slots held by abandoned steps (still executing although their run was
    cancelled or timed out) is shown as degraded.
    """
    found = client.workers()
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    table = Table(
        "worker", "state", "in flight", "slots", "last heartbeat", "functions", box=box.SIMPLE_HEAD
    )
    for worker in found:
        table.add_row(
            worker["id"],
            _state(worker),
            str(worker["inflight"]),
            str(worker["slots"]),
            _format.moment(worker["heartbeat_at"]),
            ", ".join(worker["functions"]),
        )
    print_table(table)
    for worker in found:
        if worker.get("abandoned"):
            click.echo(f"{worker['id']}: {views.abandoned_text(worker['abandoned'])}")


def _state(worker: dict[str, Any]) -> str:
    if worker["stopping"]:
        return "stopping"
    if not worker["alive"]:
        return "stale"
    return "degraded" if worker.get("abandoned") else "alive"

"""`stepline send`: send an event."""

from __future__ import annotations

import click

from stepline.cli._connect import with_client
from stepline.cli._flags import parse_json_object
from stepline.client import Client


@click.command()
@click.argument("name")
@click.option(
    "--data",
    envvar="STEPLINE_EVENT_DATA",
    default="{}",
    show_default=True,
    show_envvar=True,
    help="The event's data, a JSON object.",
)
@click.option(
    "--id",
    "event_id",
    envvar="STEPLINE_EVENT_ID",
    default=None,
    show_envvar=True,
    help="The event's id; a second event with the same id within 24 h starts nothing.",
)
@with_client
def send(client: Client, name: str, data: str, event_id: str | None) -> None:
    """Send an event NAME (e.g. shop/order.placed); prints the event id."""
    payload = parse_json_object(data, "--data")
    click.echo(client.send_event(name, payload, id=event_id))

"""`stepline send`: send an event, its data from `--data` and typed `--key=value` flags."""

from __future__ import annotations

import click

from stepline.cli._connect import with_client
from stepline.cli._data_command import DataCommand, data_option
from stepline.cli._flags import parse_flags
from stepline.client import Client

_SEND_HELP = """Send an event NAME (e.g. shop/order.placed) with data from --key=value flags;
prints the event id.

\b
--count=3         {"count": 3}
--ratio=0.5       {"ratio": 0.5}
--ok=true         {"ok": true}
--dry-run         {"dry_run": true}
--no-notify       {"notify": false}
--name=abc        {"name": "abc"}
--ids='[1, 2]'    {"ids": [1, 2]}

Flags are merged over --data. Data keys named like this command's options (data, id, url,
token, event_key) go after "--": stepline send NAME -- --id=7. The server options (--url,
--token, --event-key) go before NAME.
"""


@click.command(cls=DataCommand, help=_SEND_HELP)
@click.argument("name")
@click.option(
    "--data",
    envvar="STEPLINE_EVENT_DATA",
    default=None,
    show_envvar=True,
    help="The event's data, a JSON object; flags are merged over it.",
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
@click.pass_context
def send(
    ctx: click.Context, client: Client, name: str, data: str | None, event_id: str | None
) -> None:
    """Send an event NAME with data from --key=value flags; prints the event id."""
    if name.startswith("-"):
        raise click.UsageError("give the event name first, then the flags", ctx)
    payload = data_option(data, f"{ctx.command_path} {name}")
    payload.update(parse_flags(ctx.args))
    click.echo(client.send_event(name, payload, id=event_id))

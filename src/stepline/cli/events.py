"""`stepline send` and `stepline events list`: send an event, list the events received.

`send` takes the event's data from `--data` and typed `--key=value` flags.
"""

from __future__ import annotations

import json
from typing import Any

import click
from rich import box
from rich.table import Table

from stepline.cli import _format, _render
from stepline.cli._connect import (
    console,
    limit_option,
    output_options,
    print_table,
    run_url,
    with_client,
)
from stepline.cli._data_command import DataCommand, data_option, refuse_timeout_without_wait
from stepline.cli._flags import parse_flags
from stepline.cli._flags import since as parse_since
from stepline.cli._outcome import wait_and_report, wait_options
from stepline.client import Client

_SEND_HELP = """Send an event NAME (e.g. shop/order.placed) with data from --key=value flags;
prints the event id, then a line per run it started: its id, function and dashboard page.

\b
--count=3         {"count": 3}
--ratio=0.5       {"ratio": 0.5}
--ok=true         {"ok": true}
--notify=false    {"notify": false}
--name=abc        {"name": "abc"}
--ids='[1, 2]'    {"ids": [1, 2]}
--note=           {"note": ""}

Every data flag needs a value: a bare --flag is refused. Flags are merged over --data. Data
keys named like this command's options (data, id, wait, timeout, url, token, event_key) go
after "--": stepline send NAME -- --id=7. The server options (--url, --token, --event-key)
go before NAME. With --wait, the command follows every run the event started and exits 1
unless all of them completed.
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
@wait_options
@with_client
@click.pass_context
def send(
    ctx: click.Context,
    client: Client,
    name: str,
    data: str | None,
    event_id: str | None,
    wait: bool,
    timeout_seconds: float,
) -> None:
    """Send an event NAME with data from --key=value flags; prints the event id and its runs."""
    if name.startswith("-"):
        raise click.UsageError("give the event name first, then the flags", ctx)
    refuse_timeout_without_wait(ctx, name, wait)
    payload = data_option(data, f"{ctx.command_path} {name}")
    payload.update(parse_flags(ctx.args))
    sent = client.send_event(name, payload, id=event_id)
    click.echo(sent)
    # A run's parallel branches share its event; they are part of that run.
    started = [r for r in client.runs_for_event(sent) if r["trigger"]["kind"] != "parallel"]
    for run in started:
        click.echo(f"run {run['id']}  {run['function_id']}  {run_url(run['id'])}")
    if not started:
        click.echo(
            "no run started (no function matches the event, or it is paused, debouncing or "
            "batching)",
            err=True,
        )
    if wait and started:
        ctx.exit(wait_and_report(client, [r["id"] for r in started], timeout_seconds))


@click.group()
def events() -> None:
    """List the events received, or show one with the runs it started."""


@events.command("list")
@click.option(
    "--name",
    "prefix",
    envvar="STEPLINE_EVENT_NAME",
    default=None,
    show_envvar=True,
    help='Only events whose name starts with this, e.g. "shop/" or "shop/order.placed".',
)
@click.option(
    "--since",
    envvar="STEPLINE_SINCE",
    default=None,
    show_envvar=True,
    help='Only events received in the last this long, e.g. "2h", "30m", "1d".',
)
@limit_option("events")
@output_options
@with_client
def list_events(
    client: Client, prefix: str | None, since: str | None, limit: int, as_json: bool
) -> None:
    """List events, newest first: id, name, when received, data."""
    page = client.list_events(name_prefix=prefix, received_after=parse_since(since), limit=limit)
    found = page["data"]
    if as_json:
        click.echo(json.dumps(found, indent=2))
    elif not found:
        click.echo("no events", err=True)
    else:
        print_table(_events_table(found))


@events.command("show")
@click.argument("event_id")
@output_options
@with_client
def show_event(client: Client, event_id: str, as_json: bool) -> None:
    """Show an event (by its id or the sender's) and the runs it started."""
    event = client.get_event(event_id)
    started = client.runs_for_event(event["internal_id"])
    if as_json:
        click.echo(json.dumps({**event, "runs": started}, indent=2))
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("event", event["internal_id"])
    if event["id"] != event["internal_id"]:
        grid.add_row("id", event["id"])
    grid.add_row("name", event["name"])
    grid.add_row("received", _format.moment(event["received_at"]))
    grid.add_row("data", _format.json_text(event["data"]))
    out = console()
    out.print(grid)
    out.print(f"\nruns ({len(started)})", style="bold")
    if started:
        print_table(_render.runs_table(started))


def _events_table(found: list[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("event", no_wrap=True)
    table.add_column("name", min_width=8)
    table.add_column(f"received ({_format.zone()})", no_wrap=True)
    table.add_column("data", no_wrap=True, overflow="ellipsis", ratio=1, min_width=10)
    for event in found:
        table.add_row(
            event["internal_id"],
            event["name"],
            _format.moment_short(event["received_at"]),
            _format.json_text(event["data"]),
        )
    return table

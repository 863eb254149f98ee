"""`stepline send`: send an event, its data from `--data` and typed `--key=value` flags."""

from __future__ import annotations

import click

from stepline.cli._connect import run_url, with_client
from stepline.cli._data_command import DataCommand, data_option, refuse_timeout_without_wait
from stepline.cli._flags import parse_flags
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

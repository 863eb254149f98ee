"""`stepline functions` and `stepline trigger`: list functions and start a run with flags."""

from __future__ import annotations

import json
from typing import Any

import click
from rich import box
from rich.table import Table
from rich.text import Text

from stepline.cli import _format
from stepline.cli._connect import output_options, print_table, reason_option, with_client
from stepline.cli._data_command import (
    DataCommand,
    data_option,
    naming_known_functions,
    refuse_timeout_without_wait,
)
from stepline.cli._flags import parse_flags
from stepline.cli._outcome import wait_and_report, wait_options
from stepline.client import Client


def _trigger_text(trigger: dict[str, Any]) -> str:
    if "event" in trigger:
        return f"event {trigger['event']}" + (f" if {trigger['if']}" if trigger.get("if") else "")
    if "cron" in trigger:
        text = f"cron {trigger['cron']} ({trigger.get('tz', 'UTC')})"
        return text + _next_fire(trigger.get("next_fire_at"))
    return _format.json_text(trigger)


def _next_fire(text: str | None) -> str:
    """The next tick in the schedule's zone, then in the viewer's (with its date if another)."""
    when = _format.parse_moment(text)
    if when is None:
        return ""
    local = when.astimezone()
    viewer = local.strftime("%H:%M %Z" if local.date() == when.date() else "%Y-%m-%d %H:%M %Z")
    return f"\n  next {when:%Y-%m-%d %H:%M} ({viewer})"


@click.group(invoke_without_command=True)
@output_options
@with_client
@click.pass_context
def functions(ctx: click.Context, client: Client, as_json: bool) -> None:
    """List the registered functions with their triggers, then the options each one sets.

    `functions pause|resume FUNCTION` stops and restarts a function's event and cron runs;
    `functions invoke FUNCTION` runs it now, as `stepline trigger` does.
    """
    if ctx.invoked_subcommand is not None:
        return
    found = client.functions()
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    print_table(_functions_table(found))
    for fn in found:
        if fn.get("pause"):
            click.echo(f"{fn['id']} {_pause_text(fn['pause'])}")
    # A table of its own: an options column would squeeze the triggers at 80 columns.
    with_options = [fn for fn in found if fn.get("option_summaries")]
    if with_options:
        options = Table("function", "options", box=box.SIMPLE_HEAD)
        for fn in with_options:
            options.add_row(fn["id"], Text("\n".join(fn["option_summaries"])))
        print_table(options)


def _pause_text(pause: dict[str, Any]) -> str:
    """A pause in words: "paused since 2026-… by api: “vendor outage”"."""
    text = "paused"
    if pause.get("at"):
        text += f" since {_format.moment(pause['at'])}"
    if pause.get("by"):
        text += f" by {pause['by']}"
    return f"{text}: “{pause['reason']}”" if pause.get("reason") else text


def _functions_table(found: list[dict[str, Any]]) -> Table:
    table = Table(
        "function", "app", "triggers", "retries", "timeout", "paused", box=box.SIMPLE_HEAD
    )
    for fn in found:
        listed = "\n".join(_trigger_text(t) for t in fn["triggers"])
        triggers = Text(listed) if listed else Text("invoke only", style="dim")
        table.add_row(
            fn["id"],
            fn["app_id"],
            triggers,
            str(fn["retries"]),
            _format.duration(fn["timeout_seconds"]),
            "yes" if fn["paused"] else "",
        )
    return table


_TRIGGER_HELP = """Run FUNCTION now with data from --key=value flags; prints the run id.

\b
--full=true       {"full": true}
--notify=false    {"notify": false}
--limit=10        {"limit": 10}
--ratio=0.5       {"ratio": 0.5}
--name=abc        {"name": "abc"}
--ids='[1, 2]'    {"ids": [1, 2]}

Every data flag needs a value: a bare --flag is refused. Flags are merged over --data. Data
keys named like this command's options go after "--": stepline trigger FUNCTION --
--timeout=30. The server options (--url, --token, --event-key) go before FUNCTION. An
unknown FUNCTION is refused with the list of known ones. With --wait, the run's progress
bar, where it stands and its counters are shown live (plain lines on stderr when it is not a
terminal), then its outcome.
"""


@click.command(cls=DataCommand, help=_TRIGGER_HELP)
@click.argument("function_id", metavar="FUNCTION")
@click.option(
    "--data",
    envvar="STEPLINE_TRIGGER_DATA",
    default=None,
    show_envvar=True,
    help="Event data as a JSON object; flags are merged over it.",
)
@wait_options
@click.option(
    "--dry-run",
    is_flag=True,
    envvar="STEPLINE_DRY_RUN",
    show_envvar=True,
    help="A dry run: ctx.dry_run is set and what the run sends is recorded, not sent.",
)
@with_client
@click.pass_context
def trigger(
    ctx: click.Context,
    client: Client,
    function_id: str,
    data: str | None,
    wait: bool,
    timeout_seconds: float,
    dry_run: bool,
) -> None:
    """Run FUNCTION now with data from --key=value flags; prints the run id."""
    if function_id.startswith("-"):
        raise click.UsageError("give the function id first, then the flags", ctx)
    refuse_timeout_without_wait(ctx, function_id, wait)
    payload = data_option(data, f"{ctx.command_path} {function_id}")
    payload.update(parse_flags(ctx.args))
    with naming_known_functions(client, function_id):
        run_id = client.invoke(function_id, payload, dry_run=dry_run)
    click.echo(run_id)
    if wait:
        ctx.exit(wait_and_report(client, [run_id], timeout_seconds))


functions.add_command(trigger, "invoke")


@functions.command()
@click.argument("function_id", metavar="FUNCTION")
@reason_option("with the function until it is resumed")
@with_client
def pause(client: Client, function_id: str, reason: str | None) -> None:
    """Pause FUNCTION: its events and cron ticks start no runs until it is resumed.

    Runs already started go on; `trigger` and `functions invoke` are refused while paused.
    """
    with naming_known_functions(client, function_id):
        client.pause(function_id, reason=reason)
    click.echo(f"{function_id} paused: its events and cron ticks start no runs")


@functions.command()
@click.argument("function_id", metavar="FUNCTION")
@with_client
def resume(client: Client, function_id: str) -> None:
    """Resume FUNCTION: its events and cron ticks start runs again."""
    with naming_known_functions(client, function_id):
        client.resume(function_id)
    click.echo(f"{function_id} resumed")

"""The server options shared by every command that talks to Stepline, and the client they make."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from stepline.client import Client

DEFAULT_URL = "http://127.0.0.1:8288"
_URL_KEY = "stepline.url"

_SERVER_OPTIONS = (
    click.option(
        "--url",
        envvar="STEPLINE_URL",
        default=DEFAULT_URL,
        show_default=True,
        show_envvar=True,
        help="The Stepline server.",
    ),
    click.option(
        "--token",
        envvar="STEPLINE_API_TOKEN",
        default=None,
        show_envvar=True,
        help="API token for /v1 (not needed for `stepline dev`).",
    ),
    click.option(
        "--event-key",
        envvar="STEPLINE_EVENT_KEY",
        default=None,
        show_envvar=True,
        help="Event key for intake (not needed for `stepline dev`).",
    ),
)


def with_client(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --url, --token and --event-key to a command, which receives a `Client` first."""

    @functools.wraps(command)
    def call(*, url: str, token: str | None, event_key: str | None, **kwargs: Any) -> Any:
        click.get_current_context().meta[_URL_KEY] = url.rstrip("/")
        with Client(url, token=token, event_key=event_key) as client:
            return command(client, **kwargs)

    for option in reversed(_SERVER_OPTIONS):
        call = option(call)
    return call


def run_url(run_id: str) -> str:
    """The run's page on the dashboard of the server the current command talks to."""
    return f"{click.get_current_context().meta[_URL_KEY]}/runs/{run_id}"


def print_table(table: Table) -> None:
    """Print a table on stdout without the blank lines around it.

    Through a pipe, also without the spaces that pad its lines: scripts get the text alone.
    """
    table.show_edge = False
    out = console()
    if out.is_terminal:
        out.print(table)
        return
    with out.capture() as captured:
        out.print(table)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


def console(stderr: bool = False) -> Console:
    """Standard output (or error) for tables and progress, with no guessed highlights.

    Output to a pipe or file is as wide as it needs (up to 200 columns) unless COLUMNS says
    otherwise, so `grep` and scripts see whole rows.
    """
    out = Console(highlight=False, stderr=stderr)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = 200
    return out


def limit_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--limit N` (1 to 500, 20 by default) of a listing of `what`, newest first."""
    return click.option(
        "--limit",
        envvar="STEPLINE_LIMIT",
        default=20,
        show_default=True,
        type=click.IntRange(1, 500),
        show_envvar=True,
        help=f"At most this many {what}, newest first.",
    )


def reason_option(kept: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--reason TEXT`: why, kept `kept` and shown there (optional, at most 500 characters)."""
    return click.option(
        "--reason",
        metavar="TEXT",
        envvar="STEPLINE_REASON",
        show_envvar=True,
        help=f"Why (optional, at most 500 characters): kept {kept} and shown there.",
    )


def output_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add `-o/--output table|json` and `--json` to a command, which receives `as_json`.

    `--json` is `-o json`, kept for the scripts that use it.
    """

    @functools.wraps(command)
    def call(*args: Any, output: str | None, json_flag: bool, **kwargs: Any) -> Any:
        if json_flag and output == "table":
            raise click.UsageError("--json is -o json: give one of them, not -o table too")
        return command(*args, as_json=json_flag or output == "json", **kwargs)

    call = click.option(
        "--json",
        "json_flag",
        is_flag=True,
        envvar="STEPLINE_JSON",
        show_envvar=True,
        help="The same as -o json.",
    )(call)
    return click.option(
        "-o",
        "--output",
        type=click.Choice(["table", "json"]),
        default=None,
        envvar="STEPLINE_OUTPUT",
        show_envvar=True,
        help="table (the default), or json: the API's JSON.",
    )(call)

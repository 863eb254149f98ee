"""Waiting for runs: `--wait`, the outcomes `trigger`, `send` and `runs watch` print, exit codes."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import click
from rich.text import Text

from stepline.cli import _format
from stepline.cli._connect import console
from stepline.cli._watch import follow
from stepline.client import Client

POLL_SECONDS = 0.25

_WAIT_OPTIONS = (
    click.option(
        "--wait",
        is_flag=True,
        envvar="STEPLINE_WAIT",
        show_envvar=True,
        help="Show the progress of the runs it starts until they end, then their outcomes "
        "(exit code 1 unless all completed).",
    ),
    click.option(
        "--timeout",
        "timeout_seconds",
        envvar="STEPLINE_WAIT_TIMEOUT",
        default=600.0,
        show_default=True,
        type=click.FloatRange(min=0.1),
        show_envvar=True,
        help="With --wait: seconds to wait before giving up (exit code 1).",
    ),
)


def wait_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--wait` and `--timeout`, for the commands that start runs."""
    return functools.reduce(lambda c, option: option(c), reversed(_WAIT_OPTIONS), command)


def outcome(run: dict[str, Any]) -> Text:
    """A line "run 01H… COMPLETED in 1.2s" and, below it, the run's output or error."""
    line = Text(f"run {run['id']} ")
    line.append_text(_format.status(run))
    line.append(f" in {_format.run_duration(run)}")
    if run["error"] is not None:
        line.append(f"\nerror: {_format.error(run['error'])}", style="red")
    elif run["status"] == "COMPLETED":
        line.append(f"\noutput: {_format.output(run)}")
    return line


def exit_code(runs: Sequence[dict[str, Any]]) -> int:
    """0 when every run COMPLETED, 1 otherwise."""
    return 0 if all(run["status"] == "COMPLETED" for run in runs) else 1


def wait_and_report(client: Client, run_ids: Sequence[str], timeout_seconds: float) -> int:
    """Show the runs' progress on stderr until they end, then their outcomes on stdout.

    Returns the exit code to use: 1 if a run did not complete, or did not end in time.
    """
    try:
        runs = follow(client, run_ids, console(stderr=True), POLL_SECONDS, timeout_seconds)
    except TimeoutError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    out = console()
    for run in runs:
        out.print(outcome(run))
    return exit_code(runs)

"""A finished run's outcome as printed by `trigger --wait` and `runs watch`, and its exit code."""

from __future__ import annotations

from typing import Any

import click
from rich.text import Text

from stepline.cli import _format
from stepline.cli._connect import console
from stepline.client import Client


def outcome(run: dict[str, Any]) -> Text:
    """A line "run 01H… COMPLETED in 1.2s" and, below it, the run's output or error."""
    line = Text(f"run {run['id']} ")
    line.append_text(_format.status(run))
    line.append(f" in {_format.run_duration(run)}")
    if run["error"] is not None:
        line.append(f"\nerror: {_format.error(run['error'])}", style="red")
    elif run["status"] == "COMPLETED":
        line.append(f"\noutput: {_format.json_text(run['output'])}")
    return line


def exit_code(run: dict[str, Any]) -> int:
    """0 for a COMPLETED run, 1 for anything else."""
    return 0 if run["status"] == "COMPLETED" else 1


def print_outcome(client: Client, run_id: str, timeout_seconds: float) -> int:
    """Wait for the run to end, print its outcome, and return the exit code to use."""
    try:
        run = client.wait_for_run(run_id, timeout=timeout_seconds, poll=0.2)
    except TimeoutError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    console().print(outcome(run))
    return exit_code(run)

"""A live progress bar for one run, fed by polling the API until the run ends."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

from stepline.cli import _format
from stepline.client import END_STATUSES, Client


def _bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[figures]}"),
        TextColumn("[dim]{task.fields[note]}"),
        console=console,
    )


def _show(bar: Progress, task: TaskID, run: dict[str, Any]) -> None:
    figures = run["progress"] or {}
    total = figures.get("total") or None
    if figures:
        done = float(figures["done"])
        counts = f"{_format.number(done)}/{_format.number(total)}" if total else f"{done:g}"
    else:
        # No reported progress: count the steps that are done, with no known total.
        done = float(sum(1 for s in run.get("steps", []) if s["status"] == "completed"))
        counts = f"{done:g} step{'' if done == 1 else 's'} done"
    eta = figures.get("eta_seconds")
    parts = [
        counts,
        f"ETA {_format.duration(eta)}" if eta is not None else "",
        _format.counters(run),
    ]
    bar.update(
        task,
        description=f"{escape(run['function_id'])} "
        f"[{_format.STATUS_STYLES.get(run['status'], 'default')}]{escape(run['status'])}[/]",
        completed=done,
        total=total,
        figures=escape("  ".join(p for p in parts if p)),
        note=escape(figures.get("message") or (run["detail"] or "").lower()),
    )


def follow(
    client: Client,
    run_id: str,
    console: Console,
    interval_seconds: float,
    timeout_seconds: float | None,
) -> dict[str, Any]:
    """Show the run's progress until it ends (or `timeout_seconds` pass); returns its last state.

    Raises:
        TimeoutError: The run did not end in time.
    """
    deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
    run = client.get_run(run_id)
    with _bar(console) as bar:
        task = bar.add_task("", total=None, figures="", note="")
        while True:
            _show(bar, task, run)
            if run["status"] in END_STATUSES:
                return run
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"run {run_id} still {run['status']} after {timeout_seconds:g}s")
            time.sleep(interval_seconds)
            run = client.get_run(run_id)

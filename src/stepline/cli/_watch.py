"""Follow runs live until they end, polling the API: a rich display on a terminal, else lines."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live

from stepline.cli._live import Countdown, plain_line, run_block
from stepline.client import END_STATUSES, Client


class _Board:
    """The runs as last read, drawn afresh at every refresh so that ETAs count down."""

    def __init__(self, runs: list[dict[str, Any]]) -> None:
        self.runs = runs
        self.countdown = Countdown()

    def __rich__(self) -> RenderableType:
        runs = self.runs  # replaced whole by the polling thread, never changed in place
        return Group(*(run_block(run, self.countdown.seconds_left(run)) for run in runs))


class _Lines:
    """The runs as plain lines: one for a run whenever its state (ETA aside) changes."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.countdown = Countdown()
        self.shown: dict[str, str] = {}

    def show(self, runs: list[dict[str, Any]]) -> None:
        for run in runs:
            key = plain_line(run, None)
            if self.shown.get(run["id"]) != key:
                self.shown[run["id"]] = key
                line = plain_line(run, self.countdown.seconds_left(run))
                self.console.print(line, markup=False, soft_wrap=True)


def follow(
    client: Client,
    run_ids: Sequence[str],
    console: Console,
    interval_seconds: float,
    timeout_seconds: float | None,
) -> list[dict[str, Any]]:
    """Show the runs' progress until they all end; returns their last states.

    On a terminal the display is redrawn in place; otherwise a line is printed per change.

    Raises:
        TimeoutError: A run did not end within `timeout_seconds`.
    """
    deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
    runs = [client.get_run(run_id) for run_id in run_ids]
    if not console.is_terminal:
        lines = _Lines(console)
        return _poll(client, runs, lines.show, interval_seconds, deadline, timeout_seconds)
    board = _Board(runs)
    with Live(board, console=console, refresh_per_second=4) as live:

        def redraw(latest: list[dict[str, Any]]) -> None:
            board.runs = latest
            live.refresh()

        return _poll(client, runs, redraw, interval_seconds, deadline, timeout_seconds)


def _poll(
    client: Client,
    runs: list[dict[str, Any]],
    show: Callable[[list[dict[str, Any]]], None],
    interval_seconds: float,
    deadline: float | None,
    timeout_seconds: float | None,
) -> list[dict[str, Any]]:
    while True:
        show(runs)
        active = [run for run in runs if run["status"] not in END_STATUSES]
        if not active:
            return runs
        if deadline is not None and time.monotonic() >= deadline:
            first = active[0]
            raise TimeoutError(
                f"run {first['id']} still {first['status']} after {timeout_seconds:g}s"
            )
        time.sleep(interval_seconds)
        runs = [run if run["status"] in END_STATUSES else client.get_run(run["id"]) for run in runs]

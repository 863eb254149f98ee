"""What a run's live display says: a bar line, a step line and a counters line, or one plain line.

The API's ETA is extrapolated from the pace up to the moment it is read, so between two
progress reports it grows; `Countdown` fixes an ETA when the progress changes and counts it
down from there.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from stepline.cli import _format


class Countdown:
    """Each run's ETA as a deadline, set when its progress changes, counting down between."""

    def __init__(self) -> None:
        self._deadlines: dict[str, tuple[float, float]] = {}  # run id -> (done, deadline)

    def seconds_left(self, run: dict[str, Any], now: float | None = None) -> float | None:
        """Seconds until the run should be done (0 when overdue); None without an estimate.

        The estimate is the API's ETA (from the pace so far) when `done` was first seen at its
        current value; it is not extended while the run works towards the next report.
        """
        figures = run["progress"] or {}
        eta = figures.get("eta_seconds")
        if eta is None:
            self._deadlines.pop(run["id"], None)
            return None
        now = time.monotonic() if now is None else now
        seen = self._deadlines.get(run["id"])
        if seen is None or seen[0] != figures["done"]:
            seen = (figures["done"], now + float(eta))
            self._deadlines[run["id"]] = seen
        return max(0.0, seen[1] - now)


def eta_text(seconds: float | None) -> str:
    """The ETA as "ETA 4.2s", "ETA due" once the estimate has passed, "" without one."""
    if seconds is None:
        return ""
    return f"ETA {_format.duration(seconds)}" if seconds >= 0.05 else "ETA due"


def figures_text(run: dict[str, Any]) -> str:
    """How far the run is: "60% 3/5" with a total, "3" without, "2 steps done" without progress."""
    figures = run["progress"]
    if not figures:
        done = sum(1 for s in run.get("steps", []) if s["status"] == "completed")
        return f"{done} step{'' if done == 1 else 's'} done"
    count = _format.number(figures["done"])
    if not figures["total"]:
        return count
    percent = f"{figures['percent']:g}% " if figures["percent"] is not None else ""
    return f"{percent}{count}/{_format.number(figures['total'])}"


def step_text(run: dict[str, Any]) -> str:
    """Where the run stands: parked, waiting, executing a step, or its last finished step."""
    steps = run.get("steps", [])
    parked = [s for s in steps if s["status"] in ("sleeping", "waiting")]
    if parked and run["status"] == "RUNNING":
        step = parked[-1]
        wake_at = step["wake_at"]
        until = f" until {_format.moment_clock(wake_at)}" if wake_at else ""
        return f"{step['status']} at step {step['id']}{until}"
    if run.get("waiting_for"):
        return str(run["waiting_for"])
    in_flight = run.get("in_flight")
    if in_flight:
        running = _format.duration(_seconds_since(datetime.fromisoformat(in_flight["since"])))
        return f"executing step {in_flight['step_id']} for {running}"
    finished = [s for s in steps if s["status"] in ("completed", "failed")]
    if finished:
        return f"last step {finished[-1]['id']} {finished[-1]['status']}"
    return ""


def _seconds_since(moment: datetime) -> float:
    return max(0.0, (datetime.now(UTC) - moment).total_seconds())


def plain_line(run: dict[str, Any], seconds_left: float | None) -> str:
    """The run in one line, for output that is not a terminal."""
    figures = run["progress"] or {}
    parts = [
        f"{run['id']} {run['function_id']} {run['status']}",
        " ".join(p for p in (figures_text(run), eta_text(seconds_left)) if p),
        step_text(run),
        _format.counters(run),
        figures.get("message") or "",
    ]
    return " · ".join(p for p in parts if p)


def _status(run: dict[str, Any]) -> Text:
    text = Text(run["status"], style=_format.STATUS_STYLES.get(run["status"], ""))
    if run.get("detail") and run["status"] == "RUNNING":
        text.append(f" {str(run['detail']).lower()}", style="dim")
    return text


def _bar_line(run: dict[str, Any], seconds_left: float | None) -> Table:
    figures = run["progress"] or {}
    total = figures.get("total") or None
    done = float(figures.get("done") or 0)
    # Without a total the bar pulses: only while the run executes, not parked or ended.
    if total is None and (run["status"] != "RUNNING" or run.get("detail")):
        total, done = 1.0, float(run["status"] == "COMPLETED")
    line = Table.grid(padding=(0, 1), expand=True)
    line.add_column(no_wrap=True, overflow="ellipsis", max_width=30)
    line.add_column(no_wrap=True)
    line.add_column(ratio=1, min_width=10)
    line.add_column(no_wrap=True)
    tail = " ".join(p for p in (figures_text(run), eta_text(seconds_left)) if p)
    line.add_row(
        Text(run["function_id"], style="bold"),
        _status(run),
        ProgressBar(total=total, completed=done, finished_style="green"),
        Text(tail),
    )
    return line


def _detail_line(*parts: str) -> Text:
    text = Text("  " + " · ".join(p for p in parts if p), style="dim", no_wrap=True)
    text.overflow = "ellipsis"
    return text


def run_block(run: dict[str, Any], seconds_left: float | None) -> RenderableType:
    """The run on up to three lines.

    Name, status, bar, figures and ETA; where it stands and its progress message (if known);
    its counters (if any).
    """
    figures = run["progress"] or {}
    lines: list[RenderableType] = [_bar_line(run, seconds_left)]
    if step_text(run) or figures.get("message"):
        lines.append(_detail_line(step_text(run), figures.get("message") or ""))
    if run.get("counters"):
        lines.append(_detail_line(_format.counters(run)))
    return Group(*lines)

"""Rich renderings of runs: the `runs list` table and the `runs show` report."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from stepline.cli import _format


def runs_table(runs: list[dict[str, Any]]) -> Table:
    """One row per run: id, function, status, trigger, started, duration, progress."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("run", no_wrap=True)
    table.add_column("function", min_width=8)
    table.add_column("status", min_width=9)
    table.add_column("trigger", min_width=6)
    table.add_column(f"started ({_format.zone()})", no_wrap=True)
    table.add_column("duration", no_wrap=True)
    table.add_column("progress", min_width=9)
    for run in runs:
        table.add_row(
            run["id"],
            run["function_id"],
            _format.status(run, compact=True),
            _format.trigger_kind(run),
            _format.moment_short(run["started_at"] or run["created_at"]),
            _format.run_duration(run),
            _format.progress(run),
        )
    return table


def _header(run: dict[str, Any], verbose: bool) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("run", run["id"])
    grid.add_row("function", run["function_id"])
    grid.add_row("status", _format.status(run))
    if run.get("dry_run"):
        grid.add_row("dry run", Text("yes: what it sent is on its log, not sent", style="yellow"))
    for label, text in _why_rows(run):
        grid.add_row(label, Text(text))
    if run.get("children"):
        started = [f"{c['id']} {c['function_id']} {c['status']}" for c in run["children"]]
        grid.add_row("started", Text("\n".join(started)))
    grid.add_row("trigger", _format.trigger(run))
    if run["trigger"].get("reason"):
        grid.add_row(f"{run['trigger']['kind']} reason", Text(f"“{run['trigger']['reason']}”"))
    if run["trigger"].get("event_id"):
        grid.add_row("event", ", ".join(run["trigger"]["event_ids"]) or run["trigger"]["event_id"])
    grid.add_row("attempt", str(run["attempt"] + 1))
    grid.add_row("created", _format.moment(run["created_at"]))
    grid.add_row("started", _format.moment(run["started_at"]))
    grid.add_row("ended", _format.moment(run["ended_at"]))
    grid.add_row("duration", _format.run_duration(run))
    if run["timeout_at"]:
        grid.add_row("times out", _format.moment(run["timeout_at"]))
    if run["progress"]:
        message = run["progress"].get("message")
        grid.add_row("progress", Text(" ".join(filter(None, [_format.progress(run), message]))))
    if run["counters"]:
        grid.add_row("counters", Text(_format.counters(run)))
    if run["error"] is not None:
        grid.add_row("error", Text(_format.error(run["error"]), style="red"))
        traceback = _traceback(run["error"])
        if verbose and traceback:
            grid.add_row("", Text(traceback.rstrip(), style="dim"))
    elif run["output"] is not None or run["status"] == "COMPLETED":
        grid.add_row("output", Text(_format.output(run)))
    return grid


def _why_rows(run: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Why it waits, why it ended as it did (who cancelled it, and why), what started it."""
    cancellation = run.get("cancellation")
    if run.get("waiting_for"):
        yield "waiting", str(run["waiting_for"])
    if cancellation:
        yield "cancelled", _cancelled_text(cancellation)
    elif run.get("reason"):
        yield "reason", str(run["reason"])
    if run.get("parent_run_id"):
        yield "parent", str(run["parent_run_id"])


def _cancelled_text(cancellation: dict[str, Any]) -> str:
    """A cancel by request: 'by request (api) at 2026-… : “vendor outage”'."""
    text = f"by request ({cancellation['requested_by']}) at {_format.moment(cancellation['at'])}"
    reason = cancellation.get("reason")
    return f"{text}: “{reason}”" if reason else f"{text}, no reason given"


def _traceback(error: Any) -> str:
    """A stored error's traceback (an SDK app's errors call it `stack`)."""
    if not isinstance(error, dict):
        return ""
    return str(error.get("traceback") or error.get("stack") or "")


def _attempt_lines(attempts: list[dict[str, Any]], verbose: bool) -> Iterator[Text]:
    for attempt in attempts:
        line = Text(f"    attempt {attempt['attempt'] + 1} failed: ", style="red")
        line.append(_format.error(attempt["error"]))
        if attempt["retry_at"]:
            retry_at = _format.moment_clock(attempt["retry_at"])
            line.append(f"  (retry at {retry_at})", style="dim")
        yield line
        traceback = _traceback(attempt["error"])
        if verbose and traceback:
            yield Text("      " + traceback.rstrip().replace("\n", "\n      "), style="dim")


def _belongs(attempt: dict[str, Any], step: dict[str, Any]) -> bool:
    if attempt["step_hash"]:
        return bool(attempt["step_hash"] == step["hash"])
    return attempt["step_id"] is not None and attempt["step_id"] == step["id"]


def _timeline(run: dict[str, Any], verbose: bool) -> Iterator[RenderableType]:
    steps = run["steps"]
    failed = run["attempts"]
    yield Text(f"\nsteps ({len(steps)})", style="bold")
    width = max([len("step"), *(len(s["id"]) for s in steps)])
    if steps:
        yield Text(f"  {'step':<{width}}  kind        status      duration  attempts", style="dim")
    shown: list[dict[str, Any]] = []
    for step in steps:
        line = Text(f"  {step['id']:<{width}}  {step['kind']:<10}  ")
        line.append(f"{step['status']:<10}", style=_format.STATUS_STYLES.get(step["status"], ""))
        line.append(f"  {_format.duration(step['duration_seconds']):>8}  {step['attempts']:>8}")
        if step["wake_at"] and step["status"] != "completed":
            line.append(f"  until {_format.moment(step['wake_at'])}", style="dim")
        yield line
        mine = [a for a in failed if _belongs(a, step)]
        shown.extend(mine)
        yield from _attempt_lines(mine, verbose)
    # Attempts of a step not stored yet (e.g. waiting for its retry), then of the function.
    for step_id in dict.fromkeys(a["step_id"] for a in failed if a not in shown):
        yield Text(f"  {step_id or '(function)'}", style="bold")
        rest = [a for a in failed if a["step_id"] == step_id and a not in shown]
        yield from _attempt_lines(rest, verbose)


def _logs(run: dict[str, Any]) -> Iterator[RenderableType]:
    if not run["logs"]:
        return
    yield Text(f"\nlogs ({len(run['logs'])})", style="bold")
    # A grid, so that a long message wraps under itself rather than under the time.
    lines = Table.grid(padding=(0, 2), pad_edge=True)
    lines.add_column(no_wrap=True)
    lines.add_column(no_wrap=True, min_width=7)
    lines.add_column()
    for log in run["logs"]:
        level = str(log["level"])
        style = "red" if level in ("error", "warning") else "dim"
        lines.add_row(_format.moment(log["ts"]), Text(level, style=style), Text(log["message"]))
    yield lines


def run_report(run: dict[str, Any], verbose: bool = False) -> Group:
    """The run's header, its step timeline with failed attempts under each step, and its logs."""
    return Group(_header(run, verbose), *_timeline(run, verbose), *_logs(run))

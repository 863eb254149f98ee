"""Text for the CLI: durations, moments, statuses, progress, errors and JSON, as rich markup."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rich.text import Text

from stepline._sizes import format_size

STATUS_STYLES = {
    "QUEUED": "cyan",
    "RUNNING": "yellow",
    "COMPLETED": "green",
    "FAILED": "bold red",
    "CANCELLED": "magenta",
    "SKIPPED": "dim",
    "completed": "green",
    "failed": "red",
    "running": "yellow",
    "sleeping": "blue",
    "waiting": "blue",
}


def parse_moment(text: str | None) -> datetime | None:
    """An API timestamp ("2026-01-02T03:04:05.123Z") as an aware datetime."""
    if text is None:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def zone(now: datetime | None = None) -> str:
    """The local time zone's name now ("CET", "UTC"): what a table's time column is in."""
    return (now or datetime.now(UTC)).astimezone().strftime("%Z")


def moment(text: str | None) -> str:
    """An API timestamp in local time, to the second, with its zone; "-" for none."""
    when = parse_moment(text)
    if when is None:
        return "-"
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _local(text: str | None, now: datetime | None) -> tuple[str, str, str] | None:
    """The local time of `text` ("13:04:05" today, else "2026-01-02 13:04"), its zone, now's."""
    when = parse_moment(text)
    if when is None:
        return None
    local, today = when.astimezone(), (now or datetime.now(UTC)).astimezone()
    shown = local.strftime("%H:%M:%S" if local.date() == today.date() else "%Y-%m-%d %H:%M")
    return shown, local.strftime("%Z"), today.strftime("%Z")


def moment_short(text: str | None, now: datetime | None = None) -> str:
    """An API timestamp in local time: "13:04:05" today, "2026-01-02 13:04" other days.

    For a table whose column header names `zone()`; a time in another zone than that (the other
    side of a daylight-saving change) names its own: "2026-07-01 13:04 CEST". "-" for none.
    """
    found = _local(text, now)
    if found is None:
        return "-"
    shown, own, current = found
    return shown if own == current else f"{shown} {own}"


def moment_clock(text: str | None, now: datetime | None = None) -> str:
    """An API timestamp for a sentence: as `moment_short`, its zone always named; "-" for none."""
    found = _local(text, now)
    return "-" if found is None else f"{found[0]} {found[1]}"


def duration(seconds: float | None) -> str:
    """Seconds for people: "850ms", "4.2s", "3m05s", "2h01m"; "-" for none."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def run_duration(run: dict[str, Any], now: datetime | None = None) -> str:
    """A run's duration; for a run still going, the time so far followed by "…"."""
    if run["duration_seconds"] is not None:
        return duration(run["duration_seconds"])
    started = parse_moment(run["started_at"])
    if started is None:
        return "-"
    elapsed = ((now or datetime.now(UTC)) - started).total_seconds()
    return f"{duration(max(0.0, elapsed))}…"


def status(run: dict[str, Any], compact: bool = False) -> Text:
    """A run's status, coloured, with its detail: "RUNNING (sleeping)", or compact "SLEEPING"."""
    if compact and run.get("detail"):
        return Text(str(run["detail"]).upper(), style="blue")
    text = Text(run["status"], style=STATUS_STYLES.get(run["status"], ""))
    if run.get("detail"):
        text.append(f" ({str(run['detail']).lower()})", style="dim")
    return text


def trigger_kind(run: dict[str, Any]) -> Text:
    """How a run started, in a word, and "dry run" for one."""
    text = Text(str(run["trigger"]["kind"]))
    if run.get("dry_run"):
        text.append(" dry-run", style="yellow")
    return text


def trigger(run: dict[str, Any]) -> str:
    """How a run started: "event", "cron", "manual by cli", "replay of 01H…", "rerun of 01H…"."""
    kind = str(run["trigger"]["kind"])
    by = run["trigger"].get("by")
    if kind in ("replay", "rerun") and run.get("replay_of"):
        return f"{kind} of {run['replay_of']}"
    return f"{kind} by {by}" if by else kind


def number(value: float) -> str:
    """A count without a needless ".0"."""
    return f"{value:g}"


def progress(run: dict[str, Any]) -> str:
    """Progress as "40/120 33% ETA 1m05s" (the parts known); "" without progress."""
    figures = run.get("progress")
    if not figures:
        return ""
    parts = [number(figures["done"])]
    if figures["total"]:
        parts[0] += f"/{number(figures['total'])}"
    if figures["percent"] is not None:
        parts.append(f"{figures['percent']:g}%")
    if figures["eta_seconds"] is not None:
        parts.append(f"ETA {duration(figures['eta_seconds'])}")
    return " ".join(parts)


def counters(run: dict[str, Any]) -> str:
    """Counters as "inserted=3 updated=2"; "" without counters."""
    return " ".join(f"{name}={number(n)}" for name, n in sorted(run.get("counters", {}).items()))


def error(err: Any) -> str:
    """A stored error `{name, message, ...}` as "Name: message"."""
    if isinstance(err, dict) and "message" in err:
        name = err.get("name")
        return f"{name}: {err['message']}" if name else str(err["message"])
    return json_text(err)


def json_text(value: Any) -> str:
    """Compact JSON, as the API returned it."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def output(run: dict[str, Any]) -> str:
    """The run's output: compact JSON, or a large one's size and the command that writes it."""
    blob = run.get("output_blob")
    if blob:
        return f"{format_size(blob['size'])} of JSON; see `stepline runs output {run['id']}`"
    return json_text(run["output"])

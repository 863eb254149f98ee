"""`stepline dev` and `stepline worker`'s run lines: one when a run starts, one when it ends."""

from __future__ import annotations

import json
import logging

import click

from stepline.cli._format import duration
from stepline.store.base import ClaimedRun, RunRecord

logger = logging.getLogger("stepline.runs")
MARKS = {"COMPLETED": "✓", "FAILED": "✗", "CANCELLED": "⊘"}

quiet_option = click.option(
    "-q",
    "--quiet",
    is_flag=True,
    envvar="STEPLINE_QUIET",
    show_envvar=True,
    help="No line per run started and ended (warnings, errors and app logs still show).",
)
"""`-q`: the command prints no run lines."""


class RunLines:
    """Logs `▶ fn RUN started (event NAME)` and `✓ fn COMPLETED in 0.5s · URL/runs/RUN` at INFO.

    A failed or cancelled run's line ends with the first line of its error or reason.

    Args:
        base_url: Where the dashboard is; each end line links to the run's page there (without
            one, the line names the run by its id).
    """

    def __init__(self, base_url: str | None) -> None:
        self._base_url = base_url.rstrip("/") if base_url else None

    def started(self, claimed: ClaimedRun) -> None:
        """A run started in this process."""
        run = claimed.run
        logger.info("▶ %s %s started (%s)", run.function_id, run.id, _trigger(claimed))

    def ended(self, run: RunRecord) -> None:
        """A run that executed in this process ended."""
        took = ""
        if run.started_at is not None and run.ended_at is not None:
            took = f" in {duration((run.ended_at - run.started_at).total_seconds())}"
        why = _first_line(run.reason or _error(run.error))
        where = f"{self._base_url}/runs/{run.id}" if self._base_url else run.id
        logger.info(
            "%s %s %s%s · %s%s",
            MARKS.get(run.status, "•"),
            run.function_id,
            run.status,
            took,
            where,
            f" · {why}" if why else "",
        )


def _trigger(claimed: ClaimedRun) -> str:
    """How a run started: "event NAME", "cron by SCHEDULE", "manual by api", "replay of RUN"."""
    run = claimed.run
    if run.trigger_kind == "event" and claimed.events:
        return f"event {claimed.events[0].name}"
    if run.trigger_kind in ("replay", "rerun") and run.replay_of:
        return f"{run.trigger_kind} of {run.replay_of}"
    return f"{run.trigger_kind} by {run.trigger_by}" if run.trigger_by else run.trigger_kind


def _error(error: str | None) -> str | None:
    """A stored error (JSON `{name, message}`) as "Name: message"."""
    if not error:
        return None
    try:
        stored = json.loads(error)
    except ValueError:
        return error
    if not isinstance(stored, dict) or "message" not in stored:
        return error
    name = stored.get("name")
    return f"{name}: {stored['message']}" if name else str(stored["message"])


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""

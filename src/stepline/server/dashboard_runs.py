"""The runs list: its rows (with what ran, read in one query per page) and its filter form.

Every runs table of the dashboard (the runs page, a function's and an event's page, and their
live updates) is built by `run_rows`: the page of runs, then one batched read of their events'
names and data and their step counts (`Store.run_summaries`). `runs_page` is the runs page's
model: rows, filters as given (times shown in UTC; the page's script shows them in the
viewer's zone), their links, and the bulk actions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, get_args
from urllib.parse import urlencode

from stepline.engine.operations import Operations
from stepline.server import dashboard_models as models
from stepline.server.dashboard_bulk import bulk_links
from stepline.server.dashboard_filters import RANGES, RunsFilters, input_text
from stepline.store.base import RunRecord, RunStatus, Store, TriggerKind

STATUSES: tuple[str, ...] = get_args(RunStatus)
TRIGGER_KINDS: tuple[str, ...] = get_args(TriggerKind)
SELECTABLE = "select"
"""The live stream's parameter asking for rows with a checkbox (the runs page's)."""


def run_rows(store: Store, runs: Sequence[RunRecord], now: datetime) -> list[models.RunRow]:
    """The runs as table lines, with their events and step counts read in one query."""
    summaries = store.run_summaries([run.id for run in runs], models.SUMMARY_CHARS)
    return [models.run_row(run, now, summaries.get(run.id)) for run in runs]


@dataclass(frozen=True, kw_only=True, slots=True)
class RangeOption:
    """A relative range of the filter form's "Created" select (`since`)."""

    value: str
    label: str
    selected: bool


def range_options(since: str | None) -> list[RangeOption]:
    """The options "Any time", the usual ranges, and a range the URL gave that is not one."""
    ranges = list(RANGES)
    if since and since not in dict(ranges):
        ranges.append((since, f"Last {since}"))
    first = RangeOption(value="", label="Any time", selected=not since)
    return [first, *(RangeOption(value=v, label=t, selected=v == since) for v, t in ranges)]


def runs_page(ops: Operations, filters: RunsFilters, now: datetime) -> dict[str, Any]:
    """The runs page's model for these filters at `now`."""
    query = filters.at(now)
    # One more than shown tells whether an older page exists.
    runs = ops.list_runs(replace(query, limit=query.limit + 1))
    rows = run_rows(ops.store, runs[: query.limit], now)
    params = filters.params()
    given = filters.given
    older = None
    if len(runs) > query.limit:
        older = models.runs_href(**params, before=rows[-1].id)
    stream = {**params, SELECTABLE: "1"}
    return {
        "rows": rows,
        "selectable": True,
        "function_options": models.options(
            sorted(f.id for f in ops.list_functions()), given.function_id, "any"
        ),
        "status_options": models.options(STATUSES, given.status, "any"),
        "error_name": given.error_name or "",
        "kind_options": models.options(TRIGGER_KINDS, given.trigger_kind, "any"),
        "range_options": range_options(filters.since),
        "event_id": given.event_id,
        "run_ids": params.get("run_ids"),
        "created_after": input_text(given.created_after),
        "created_before": input_text(given.created_before),
        "q": given.q or "",
        "dry_run": given.dry_run,
        "bulk": bulk_links(query),
        "older_href": older,
        "newest_href": models.runs_href(**params) if query.before else None,
        "stream_url": None if query.before else f"/runs/stream?{urlencode(stream)}",
    }

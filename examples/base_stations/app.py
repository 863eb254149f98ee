"""Nightly base-station sync: pull every station from a vendor portal into our own table.

Run it with `stepline dev examples/base_stations/app.py` (or `scripts/dev`, which also starts the
stations page of `web.py`), then press "Sync now" on that page or "Run now" in the dashboard, or
send `stations/sync.requested` (optionally with `{"delete_stale": true}` or
`{"per_page": 50}`). At the end the function sends `stations/sync.completed` with its summary, or
`stations/sync.failed` with the error. Only one sync runs at a time (a singleton), and the
event `stations/sync.cancel` cancels it. A dry run (the "Dry run" box beside Run now or on the
stations page, `stepline trigger stations-sync --dry-run`, or `"stepline/dry_run": true` in the
event's data) reports what the sync would change and writes nothing; its announcement is
recorded on the run's log instead of sent. See README.md next to this file.

The durable-function rules this function follows:

* every side effect and all I/O (HTTP, the stations database, the clock) happens inside
  `ctx.step.run`, whose JSON result is saved; a retry or a crash replays the function from the
  top, and finished steps return their saved result instead of running again;
* code outside steps (validation, sums, counters, logs) is replayed, so it is deterministic:
  it depends only on the event and on step results;
* `ctx.log` and `ctx.count` outside steps are recorded once: Stepline drops them while it
  replays saved steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict

import stepline
from examples.base_stations import db, vendor
from stepline.sdk.step import Step

MAX_PER_PAGE = 500
REQUESTED = "stations/sync.requested"
CANCEL = "stations/sync.cancel"
COMPLETED = "stations/sync.completed"
FAILED = "stations/sync.failed"


class Summary(TypedDict):
    """The run's output: what the sync did (or, in a dry run, would do)."""

    fetched: int
    inserted: int
    updated: int
    unchanged: int
    deleted: int
    invalid: int
    dry_run: bool


@dataclass(frozen=True, kw_only=True)
class SyncOptions:
    """Options read from the event's data; a cron tick uses the defaults."""

    dry_run: bool = False
    delete_stale: bool = False
    per_page: int = 100

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> SyncOptions:
        """Validate `data.dry_run`, `data.delete_stale` and `data.per_page`.

        Raises:
            stepline.NonRetriableError: An option has the wrong type or range (a retry would
                meet the same event, so the run fails at once with this message).
        """
        data = event.get("data") or {}
        per_page = data.get("per_page", 100)
        if not isinstance(per_page, int) or isinstance(per_page, bool):
            raise stepline.NonRetriableError("data.per_page must be an integer")
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise stepline.NonRetriableError(f"data.per_page must be from 1 to {MAX_PER_PAGE}")
        return cls(
            dry_run=_flag(data, "dry_run"),
            delete_stale=_flag(data, "delete_stale"),
            per_page=per_page,
        )


def _flag(data: dict[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise stepline.NonRetriableError(f"data.{name} must be true or false")
    return value


app = stepline.App("base-stations")


@app.function(
    id="stations-sync",
    name="Sync base stations",
    triggers=[
        stepline.cron("0 0 * * *", tz="Africa/Johannesburg"),
        stepline.event(REQUESTED),
    ],
    retries=4,
    timeout="10m",
    # One sync at a time: "Sync now" while one is active is refused (HTTP 409 with its run id),
    # a second event is recorded as skipped, and `stations/sync.cancel` stops the active one.
    singleton=stepline.Singleton(mode="skip"),
    cancel_on=[stepline.CancelOn(CANCEL)],
)
def stations_sync(ctx: stepline.Context[Step]) -> Summary:
    """Sync, then announce the outcome: `stations/sync.completed` or `stations/sync.failed`.

    A failure for good is a step that used up its attempts (`StepError`) or an error that no
    retry can fix (`NonRetriableError`, such as a bad option). Anything else raised between
    steps is left alone, so Stepline retries it as usual.
    """
    try:
        summary = _sync(ctx)
    except (stepline.StepError, stepline.NonRetriableError) as exc:
        step = exc.step_id if isinstance(exc, stepline.StepError) else None
        failed = {"run_id": ctx.run_id, "step": step, "error": str(exc)}
        ctx.step.send_event("announce-failed", {"name": FAILED, "data": failed})
        raise stepline.NonRetriableError(str(exc)) from exc
    completed = {"run_id": ctx.run_id, "summary": summary}
    ctx.step.send_event("announce-completed", {"name": COMPLETED, "data": completed})
    return summary


def _sync(ctx: stepline.Context[Step]) -> Summary:
    """Fetch every page, store the valid stations, optionally delete the ones gone upstream."""
    options = SyncOptions.from_event(ctx.event)
    dry_run = ctx.dry_run or options.dry_run  # a dry run, or the older `data.dry_run` flag
    write = not dry_run
    synced_at = ctx.step.run("begin", _utc_now)
    summary: Summary = {
        "fetched": 0,
        "inserted": 0,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "invalid": 0,
        "dry_run": dry_run,
    }
    seen: list[str] = []
    page, total_pages = 1, 1
    while page <= total_pages:
        fetched = ctx.step.run(f"fetch-page-{page}", vendor.fetch_page, page, options.per_page)
        total_pages = fetched["total_pages"]
        stations = _accept(ctx, fetched, summary)
        seen.extend(filter(None, map(vendor.serial_of, fetched["records"])))
        step_id = f"upsert-page-{page}" if write else f"plan-page-{page}"
        changes = ctx.step.run(step_id, db.upsert, stations, synced_at, write=write)
        _tally(ctx, changes, summary)
        ctx.progress(page, total_pages, f"page {page} of {total_pages}")
        page += 1
    if options.delete_stale:
        summary["deleted"] = _delete_stale(ctx, seen, write=write)
    return summary


def _utc_now() -> str:
    """The sync's timestamp, taken once in a step so that every replay sees the same one."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _accept(
    ctx: stepline.Context[Step], fetched: vendor.Page, summary: Summary
) -> list[vendor.Station]:
    """The page's valid stations; each invalid record is logged as a warning and counted.

    A warning, not an error: the sync goes on and succeeds; the record waits for the vendor.
    """
    valid: list[vendor.Station] = []
    for record in fetched["records"]:
        checked = vendor.validate(record)
        if isinstance(checked, vendor.Rejected):
            ctx.log.warning(checked.describe(fetched["page"]))
            ctx.count("invalid")
            summary["invalid"] += 1
        else:
            valid.append(checked)
    ctx.count("fetched", len(fetched["records"]))
    summary["fetched"] += len(fetched["records"])
    return valid


def _tally(ctx: stepline.Context[Step], changes: db.Changes, summary: Summary) -> None:
    """Add a page's inserted/updated/unchanged figures to the run's counters and the summary."""
    ctx.count("inserted", changes["inserted"])
    ctx.count("updated", changes["updated"])
    ctx.count("unchanged", changes["unchanged"])
    summary["inserted"] += changes["inserted"]
    summary["updated"] += changes["updated"]
    summary["unchanged"] += changes["unchanged"]


def _delete_stale(ctx: stepline.Context[Step], seen: list[str], *, write: bool) -> int:
    """Delete (or, in a dry run, count) stored stations the portal no longer lists.

    `seen` holds every serial the portal listed, valid record or not: a station whose record
    lost its coordinates still exists, and keeps its last good row.
    """
    if not seen:
        # An empty answer is far more likely a portal hiccup than every station gone.
        ctx.log.warning("the portal listed no valid stations; not deleting anything")
        return 0
    step_id = "delete-stale" if write else "plan-delete-stale"
    deleted = ctx.step.run(step_id, db.delete_stale, seen, write=write)
    ctx.count("deleted", deleted)
    return deleted

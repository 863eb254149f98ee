"""The base-station sync under `stepline.testing`: mocked portal steps, a fake clock.

No portal simulator runs here: every `fetch-page-N` step is mocked, and the portal's address
points at a closed port, so a fetch that slipped through would fail the run. The stations
database is real (a file per test), so the upsert steps do their actual work.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from examples.base_stations import db, portal, vendor
from examples.base_stations.app import COMPLETED, FAILED, REQUESTED, stations_sync

import stepline
from stepline.sdk.step import Step
from stepline.testing import TestRun, run_function

RECORDS = portal.generate_stations(250, seed=2026)  # every 25th record is invalid
VALID, INVALID = 240, 10
SYNCED_AT = "2026-03-01T02:00:00+00:00"


def pages(records: list[dict[str, Any]], per_page: int = 100) -> dict[str, vendor.Page]:
    """Mocks for the `fetch-page-N` steps: the records as the portal would page them."""
    chunks = [records[i : i + per_page] for i in range(0, len(records), per_page)]
    return {
        f"fetch-page-{n}": {"page": n, "total_pages": len(chunks), "records": chunk}
        for n, chunk in enumerate(chunks, start=1)
    }


@pytest.fixture(autouse=True)
def stations_db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fresh stations database; the portal at a closed port (the mocks must answer)."""
    path = tmp_path / "stations.db"
    monkeypatch.setenv("STATIONS_DB", str(path))
    monkeypatch.setenv("STATIONS_PORTAL_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("STATIONS_HTTP_TIMEOUT", "1")
    return path


# A variant of the demo for a portal whose nightly export takes a while to settle: pause
# durably, then run the demo's own function unchanged.
variants = stepline.App("base-stations-variants")


@variants.function(id="stations-sync-after-pause", triggers=[stepline.event(REQUESTED)])
def sync_after_pause(ctx: stepline.Context[Step]) -> Any:
    """Sleep 15 minutes, then sync as the demo does."""
    ctx.step.sleep("let-portal-settle", "15m")
    return stations_sync.handler(ctx)


def test_the_sync_runs_with_mocked_portal_steps_through_a_sleep(stations_db: Path) -> None:
    mocks: dict[str, Any] = {"begin": SYNCED_AT, **pages(RECORDS)}
    start = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    with TestRun(
        sync_after_pause, event={"name": REQUESTED, "data": {}}, mocks=mocks, now=start
    ) as run:
        assert run.result.detail == "SLEEPING"
        assert not stations_db.exists()  # nothing synced before the pause ends
        assert run.advance("14m").detail == "SLEEPING"
        result = run.advance("1m")
        assert run.clock.now() == start + timedelta(minutes=15)

    assert result.status == "COMPLETED", result.error
    summary = {"fetched": 250, "inserted": VALID, "updated": 0, "unchanged": 0}
    assert result.output == {**summary, "deleted": 0, "invalid": INVALID, "dry_run": False}
    assert result.counters == {**summary, "invalid": INVALID}
    assert [step.id for step in result.steps.values()] == [
        "let-portal-settle",
        "begin",
        "fetch-page-1",
        "upsert-page-1",
        "fetch-page-2",
        "upsert-page-2",
        "fetch-page-3",
        "upsert-page-3",
        "announce-completed",
    ]
    warnings = [log.message for log in result.logs if log.level == "warning"]
    assert len(warnings) == INVALID
    assert warnings[0].startswith("skipped record id=10012")
    [announced] = result.sent_events
    assert announced["name"] == COMPLETED
    assert announced["data"] == {"run_id": result.run_id, "summary": result.output}
    stored = db.stored_stations(stations_db)
    assert len(stored) == VALID
    assert {station["synced_at"] for station in stored} == {SYNCED_AT}  # the mocked "begin"


def test_a_rate_limited_page_waits_out_the_portals_retry_after() -> None:
    answers = pages(RECORDS)
    asked: list[int] = []

    def fetch_page_2(page: int, per_page: int) -> vendor.Page:
        asked.append(page)
        if len(asked) == 1:
            raise stepline.RetryAfterError("portal rate-limited page 2; retry in 30s", 30)
        return answers["fetch-page-2"]

    mocks: dict[str, Any] = {**answers, "fetch-page-2": fetch_page_2}
    with TestRun(stations_sync, event={"name": REQUESTED}, mocks=mocks) as run:
        assert (run.result.detail, asked) == ("RETRYING", [2])
        assert run.advance("29s").detail == "RETRYING"
        result = run.advance("1s")
    assert result.status == "COMPLETED", result.error
    assert asked == [2, 2]
    assert result.steps["fetch-page-2"].attempts == 2
    assert result.output["inserted"] == VALID


def test_a_portal_that_keeps_failing_fails_the_run_and_announces_it() -> None:
    mocks = {"fetch-page-1": vendor.PortalError("portal answered 503 for page 1")}

    result = run_function(stations_sync, event={"name": REQUESTED}, mocks=mocks)

    assert result.status == "FAILED"
    assert result.steps["fetch-page-1"].attempts == 5  # retries=4
    assert result.error is not None
    assert result.error["name"] == "NonRetriableError"
    [announced] = result.sent_events
    assert announced["name"] == FAILED
    assert announced["data"]["step"] == "fetch-page-1"
    assert "portal answered 503" in announced["data"]["error"]


def test_a_second_sync_updates_renamed_stations_and_deletes_stale_ones(stations_db: Path) -> None:
    first = run_function(stations_sync, data={}, mocks=pages(RECORDS))
    assert first.output["inserted"] == VALID
    gone, renamed = RECORDS[0], {**RECORDS[1], "name": "Renamed"}

    second = run_function(
        stations_sync, data={"delete_stale": True}, mocks=pages([renamed, *RECORDS[2:]])
    )

    assert second.status == "COMPLETED", second.error
    assert (second.output["updated"], second.output["deleted"]) == (1, 1)
    assert second.steps["delete-stale"].output == 1
    names = {s["serial"]: s["name"] for s in db.stored_stations(stations_db)}
    assert names[renamed["serial_number"]] == "Renamed"
    assert gone["serial_number"] not in names

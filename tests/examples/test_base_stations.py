"""The base-station sync example against its portal simulator, on a real store and fake clock.

Each test starts its own simulator and stations database. The engine's clock is fake, so a
retry happens only once the test moves time past its backoff: `finish` advances the clock in
one-second steps (while the run is parked) until the run ends.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from examples.base_stations import db, portal
from examples.base_stations.app import app

from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.engine.operations import RunDetail
from stepline.store.base import RunFilter

EVENT = "stations/sync.requested"
VALID, INVALID, TOTAL = 240, 10, 250  # the simulator's default data set (seed 2026)


def finish(engine: Engine, clock: FakeClock, run_id: str, *, deadline: float = 30) -> RunDetail:
    """Run `run_id` to its end, moving the fake clock a second at a time while it is parked.

    Time moves only while the worker executes nothing: leases are timed by the same clock, so
    moving it under a running replay would expire the lease and have the run reclaimed.
    """
    give_up = time.monotonic() + deadline
    while True:
        detail = engine.get_run(run_id)
        if detail.run.ended:
            return detail
        if time.monotonic() > give_up:
            raise TimeoutError(f"run {run_id} still {detail.run.status} ({detail.run.detail})")
        if engine.worker.inflight == 0:
            clock.advance(1)
        time.sleep(0.01)


def sync(engine: Engine, clock: FakeClock, **data: Any) -> RunDetail:
    """Send `stations/sync.requested` with `data` and run the one run it starts to its end."""
    [event_id] = engine.send({"name": EVENT, "data": data})
    [run] = engine.operations.runs_for_event(event_id)
    return finish(engine, clock, run.id)


def output(detail: RunDetail) -> dict[str, Any]:
    """The run's summary."""
    assert detail.run.output is not None
    result: dict[str, Any] = json.loads(detail.run.output)
    return result


def counters(detail: RunDetail) -> dict[str, float]:
    """The run's counters."""
    result: dict[str, float] = json.loads(detail.run.counters)
    return result


def attempts(detail: RunDetail) -> dict[str, int]:
    """Attempts per step id."""
    return {step.id: step.attempts for step in detail.steps}


def announced(engine: Engine, detail: RunDetail) -> tuple[str, dict[str, Any]]:
    """Name and data of the event the run sent last (its `announce-*` step)."""
    step = detail.steps[-1]
    assert step.id.startswith("announce-")
    assert step.output is not None
    [event_id] = json.loads(step.output)
    event = engine.operations.get_event(event_id)
    data: dict[str, Any] = json.loads(event.data)
    return event.name, data


def test_full_sync_stores_every_valid_station(
    engine: Engine, clock: FakeClock, vendor: portal.Portal
) -> None:
    detail = sync(engine, clock)

    assert detail.run.status == "COMPLETED"
    assert output(detail) == {
        "fetched": TOTAL,
        "inserted": VALID,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "invalid": INVALID,
        "dry_run": False,
    }
    assert counters(detail) == {
        "fetched": TOTAL,
        "invalid": INVALID,
        "inserted": VALID,
        "updated": 0,
        "unchanged": 0,
    }
    assert (detail.run.progress_done, detail.run.progress_total) == (3, 3)
    assert detail.run.progress_message == "page 3 of 3"
    assert [s.id for s in detail.steps] == [
        "begin",
        *(f"{kind}-page-{n}" for n in (1, 2, 3) for kind in ("fetch", "upsert")),
        "announce-completed",
    ]
    assert announced(engine, detail) == (
        "stations/sync.completed",
        {"run_id": detail.run.id, "summary": output(detail)},
    )
    stored = db.all_stations()
    assert len(stored) == VALID
    first = vendor.records[0]
    assert stored[first["serial_number"]] == {
        "serial": first["serial_number"],
        "name": first["name"],
        "lat": first["location"]["lat"],
        "lon": first["location"]["lon"],
        "vendor_updated_at": first["updated_at"],
    }
    assert "TBN-2600037" not in stored  # a record without coordinates


def test_invalid_records_are_logged_as_warnings(engine: Engine, clock: FakeClock) -> None:
    detail = sync(engine, clock)

    warnings = [log.message for log in detail.logs if log.level == "warning"]
    assert len(warnings) == INVALID
    assert not [log for log in detail.logs if log.level == "error"]  # a successful sync
    assert warnings[0] == (
        "skipped record id=10012 ('Rustenburg 012', no serial) on page 1: missing serial number"
    )
    assert warnings[1] == (
        "skipped record id=10037 ('Umlazi 037', serial 'TBN-2600037') on page 1: "
        "missing coordinates"
    )
    assert sum("missing serial number" in e for e in warnings) == 5
    assert sum("missing coordinates" in e for e in warnings) == 5


def test_second_sync_updates_changed_stations(
    engine: Engine, clock: FakeClock, vendor: portal.Portal
) -> None:
    sync(engine, clock)
    vendor.update("TBN-2600001", name="Soweto North 001")
    vendor.update("TBN-2600150", location={"lat": -26.2, "lon": 28.0})
    vendor.update("TBN-2600249")  # only its updated_at moves

    detail = sync(engine, clock)

    assert detail.run.status == "COMPLETED"
    summary = output(detail)
    assert (summary["inserted"], summary["updated"], summary["unchanged"]) == (0, 3, VALID - 3)
    stored = db.all_stations()
    assert stored["TBN-2600001"]["name"] == "Soweto North 001"
    assert (stored["TBN-2600150"]["lat"], stored["TBN-2600150"]["lon"]) == (-26.2, 28.0)


def test_dry_run_reports_changes_and_writes_nothing(
    engine: Engine, clock: FakeClock, vendor: portal.Portal
) -> None:
    detail = sync(engine, clock, dry_run=True)

    assert detail.run.status == "COMPLETED"
    assert output(detail) == {
        "fetched": TOTAL,
        "inserted": VALID,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "invalid": INVALID,
        "dry_run": True,
    }
    assert counters(detail)["inserted"] == VALID
    assert [s.id for s in detail.steps if "page" in s.id][1::2] == [
        "plan-page-1",
        "plan-page-2",
        "plan-page-3",
    ]
    assert db.all_stations() == {}

    sync(engine, clock)
    before = db.all_stations()
    vendor.update("TBN-2600001", name="Renamed")
    vendor.remove("TBN-2600002")

    detail = sync(engine, clock, dry_run=True, delete_stale=True)

    summary = output(detail)
    assert (summary["inserted"], summary["updated"], summary["deleted"]) == (0, 1, 1)
    assert db.all_stations() == before


def test_delete_stale_removes_stations_gone_upstream(
    engine: Engine, clock: FakeClock, vendor: portal.Portal
) -> None:
    sync(engine, clock)
    vendor.remove("TBN-2600002")

    kept = sync(engine, clock)
    assert output(kept)["deleted"] == 0
    assert "TBN-2600002" in db.all_stations()

    detail = sync(engine, clock, delete_stale=True)

    assert detail.run.status == "COMPLETED"
    assert output(detail)["deleted"] == 1
    assert counters(detail)["deleted"] == 1
    assert detail.steps[-2].id == "delete-stale"
    stored = db.all_stations()
    assert "TBN-2600002" not in stored
    assert len(stored) == VALID - 1


def test_delete_stale_keeps_stations_whose_record_turned_invalid(
    engine: Engine, clock: FakeClock, vendor: portal.Portal
) -> None:
    sync(engine, clock)
    vendor.update("TBN-2600001", location=None)

    detail = sync(engine, clock, delete_stale=True)

    summary = output(detail)
    assert (summary["invalid"], summary["deleted"]) == (INVALID + 1, 0)
    assert "TBN-2600001" in db.all_stations()


def test_rate_limited_page_is_retried_after_retry_after(
    engine: Engine, clock: FakeClock, vendor: portal.Portal
) -> None:
    vendor.inject("429", page=2)

    detail = sync(engine, clock)

    assert detail.run.status == "COMPLETED"
    assert attempts(detail)["fetch-page-2"] == 2
    assert attempts(detail)["fetch-page-1"] == 1
    [failed] = detail.attempts
    assert failed.step_id == "fetch-page-2"
    assert json.loads(failed.error)["name"] == "RetryAfterError"
    assert failed.retry_at == failed.ended_at + timedelta(seconds=30)  # the portal's Retry-After
    assert [page for page, _ in vendor.requests] == [1, 2, 2, 3]
    assert output(detail)["inserted"] == VALID


def test_server_errors_are_retried_with_backoff(
    engine: Engine, clock: FakeClock, vendor: portal.Portal
) -> None:
    vendor.inject("500", "500", page=2)

    detail = sync(engine, clock)

    assert detail.run.status == "COMPLETED"
    assert attempts(detail)["fetch-page-2"] == 3
    delays = [a.retry_at - a.ended_at for a in detail.attempts if a.retry_at is not None]
    assert delays == [timedelta(seconds=1), timedelta(seconds=2)]  # base 1s, doubling
    assert {json.loads(a.error)["name"] for a in detail.attempts} == {"PortalError"}
    # Replays after the retries did not count or log page 1 a second time.
    assert counters(detail)["fetched"] == TOTAL
    assert counters(detail)["inserted"] == VALID
    assert len([log for log in detail.logs if log.level == "warning"]) == INVALID


def test_exhausted_step_fails_the_run_and_announces_it(
    engine: Engine, clock: FakeClock, vendor: portal.Portal
) -> None:
    vendor.inject("500", "500", "500", "500", "500", page=2)

    detail = sync(engine, clock)

    assert detail.run.status == "FAILED"
    assert attempts(detail)["fetch-page-2"] == 5  # retries=4
    assert "step 'fetch-page-2' failed: PortalError: portal answered 500" in (
        detail.run.error or ""
    )
    name, data = announced(engine, detail)
    assert (name, data["step"]) == ("stations/sync.failed", "fetch-page-2")
    assert len(db.all_stations()) == 96  # page 1 was stored before page 2 gave up


def test_stalled_response_times_out_and_is_retried(
    engine: Engine, clock: FakeClock, vendor: portal.Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATIONS_HTTP_TIMEOUT", "0.3")
    vendor.inject("slow", page=3)

    detail = sync(engine, clock)

    assert detail.run.status == "COMPLETED"
    assert attempts(detail)["fetch-page-3"] == 2
    [failed] = detail.attempts
    assert json.loads(failed.error)["name"] == "ReadTimeout"


def test_wrong_token_fails_at_once(
    engine: Engine, clock: FakeClock, vendor: portal.Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATIONS_PORTAL_TOKEN", "stolen")

    detail = sync(engine, clock)

    assert detail.run.status == "FAILED"
    assert attempts(detail)["fetch-page-1"] == 1
    assert "401" in (detail.run.error or "")
    assert len(vendor.requests) == 0  # refused before any page was served
    name, data = announced(engine, detail)
    assert name == "stations/sync.failed"
    assert (data["run_id"], data["step"]) == (detail.run.id, "fetch-page-1")
    assert data["error"].startswith("step 'fetch-page-1' failed: NonRetriableError: portal")
    assert "401" in data["error"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"per_page": "ten"}, "data.per_page must be an integer"),
        ({"per_page": 0}, "data.per_page must be from 1 to 500"),
        ({"dry_run": "yes"}, "data.dry_run must be true or false"),
    ],
)
def test_bad_options_fail_the_run_without_retries(
    engine: Engine, clock: FakeClock, data: dict[str, Any], message: str
) -> None:
    detail = sync(engine, clock, **data)

    assert detail.run.status == "FAILED"
    assert message in (detail.run.error or "")
    assert [step.id for step in detail.steps] == ["announce-failed"]
    assert announced(engine, detail) == (
        "stations/sync.failed",
        {"run_id": detail.run.id, "step": None, "error": message},
    )
    assert db.all_stations() == {}


def test_per_page_sets_the_page_count(engine: Engine, clock: FakeClock) -> None:
    detail = sync(engine, clock, per_page=60)

    assert output(detail)["inserted"] == VALID
    assert (detail.run.progress_done, detail.run.progress_total) == (5, 5)
    assert sum(s.id.startswith("fetch-page-") for s in detail.steps) == 5


def test_cron_runs_the_sync_at_midnight_in_johannesburg(engine: Engine, clock: FakeClock) -> None:
    [trigger] = app.functions["stations-sync"].cron_triggers
    give_up = time.monotonic() + 10
    while engine.store.cron_last_tick("stations-sync", trigger.schedule) is None:
        assert time.monotonic() < give_up, "the scheduler never saw the schedule"
        time.sleep(0.02)

    clock.set(datetime(2026, 1, 1, 22, 0, 1, tzinfo=UTC))  # 00:00:01 on 2 January in SAST

    while not (runs := engine.list_runs(RunFilter(trigger_kind="cron"))):
        assert time.monotonic() < give_up, "no cron run"
        time.sleep(0.02)
    detail = finish(engine, clock, runs[0].id)
    assert detail.run.status == "COMPLETED"
    assert output(detail)["inserted"] == VALID


def test_portal_url_starts_one_simulator_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATIONS_PORTAL_URL", raising=False)
    monkeypatch.setattr(portal, "_started", None)
    url = portal.portal_url()
    try:
        assert portal.portal_url() == url
        headers = {"Authorization": f"Bearer {portal.DEFAULT_TOKEN}"}
        page = httpx.get(f"{url}/api/stations?page=3&per_page=100", headers=headers).json()
        assert (page["total"], page["total_pages"], len(page["data"])) == (TOTAL, 3, 50)
        assert httpx.get(f"{url}/api/stations").status_code == 401
    finally:
        assert portal._started is not None
        portal._started.close()


def test_the_demo_portal_is_slow_enough_to_watch_unless_fast() -> None:
    assert portal.PortalSettings.from_env({}).latency == portal.DEMO_LATENCY
    assert portal.PortalSettings.from_env({"STATIONS_FAST": "1"}).latency == 0
    explicit = {"STATIONS_FAST": "1", "STATIONS_PORTAL_LATENCY": "0.3"}
    assert portal.PortalSettings.from_env(explicit).latency == 0.3


def test_simulator_settings_from_env() -> None:
    settings = portal.PortalSettings.from_env(
        {"STATIONS_PORTAL_FAULTS": "429, ok,500", "STATIONS_PORTAL_LATENCY": "0.2"}
    )
    assert settings.faults == ["429", "ok", "500"]
    assert settings.latency == 0.2
    with pytest.raises(ValueError, match="unknown portal fault 'teapot'"):
        portal.parse_faults("teapot")


def test_failed_write_does_not_repeat_the_pages_log_lines(
    engine: Engine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    upsert = db.upsert

    def flaky_upsert(*args: Any, **kwargs: Any) -> db.Changes:
        calls.append(1)
        if len(calls) == 2:  # page 2's first write
            raise RuntimeError("database is locked")
        return upsert(*args, **kwargs)

    monkeypatch.setattr(db, "upsert", flaky_upsert)

    detail = sync(engine, clock)

    assert detail.run.status == "COMPLETED"
    assert attempts(detail)["upsert-page-2"] == 2
    assert counters(detail)["invalid"] == INVALID
    assert len([log for log in detail.logs if log.level == "warning"]) == INVALID


def test_one_sync_at_a_time_and_the_cancel_event_stops_it(engine: Engine) -> None:
    requested, again, cancel = engine.send(
        [{"name": EVENT}, {"name": EVENT}, {"name": "stations/sync.cancel"}]
    )

    [first] = engine.operations.runs_for_event(requested)
    [skipped] = engine.operations.runs_for_event(again)
    assert (skipped.status, skipped.detail) == ("SKIPPED", "SINGLETON")
    assert skipped.reason is not None and first.id in skipped.reason
    cancelled = engine.operations.store.get_run(first.id)
    assert (cancelled.status, cancelled.cancelled_by) == ("CANCELLED", cancel)

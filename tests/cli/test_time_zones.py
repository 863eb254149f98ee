"""CLI times are in the viewer's zone and name it; JSON keeps the API's RFC 3339 UTC.

The commands run with TZ=Asia/Kolkata (UTC+05:30 all year, so the expected text is plain
arithmetic); the daylight-saving rule of table cells is checked in New York.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from stepline.cli import _format
from tests.cli.conftest import DevServer
from tests.cli.support import COMMAND, cli_env

KOLKATA = timezone(timedelta(hours=5, minutes=30))


def _in_kolkata(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**cli_env(url), "TZ": "Asia/Kolkata"}
    return subprocess.run(
        [*COMMAND, *args], env=env, capture_output=True, text=True, timeout=8, check=False
    )


def _local(iso: str, pattern: str) -> str:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(KOLKATA).strftime(pattern)


def _cell(iso: str) -> str:
    """A table cell's time in Kolkata: the clock today, else date and minutes."""
    today = datetime.now(KOLKATA).date()
    when = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(KOLKATA)
    return when.strftime("%H:%M:%S" if when.date() == today else "%Y-%m-%d %H:%M")


def _lines(output: str) -> list[str]:
    return [" ".join(line.split()) for line in output.splitlines()]


def test_runs_show_and_list_give_local_times_that_name_the_zone(dev_server: DevServer) -> None:
    run_id = dev_server.client.invoke("echo", {"n": 31})
    run = dev_server.client.wait_for_run(run_id, timeout=5)

    shown = _in_kolkata(dev_server.url, "runs", "show", run_id)
    listed = _in_kolkata(dev_server.url, "runs", "list", "--function", "echo")
    as_json = _in_kolkata(dev_server.url, "runs", "show", run_id, "-o", "json")

    assert shown.returncode == 0, shown.stderr
    lines = _lines(shown.stdout)
    for name in ("created", "started", "ended"):
        assert f"{name} {_local(run[f'{name}_at'], '%Y-%m-%d %H:%M:%S')} IST" in lines
    assert listed.returncode == 0, listed.stderr
    header, *rows = _lines(listed.stdout)
    assert "started (IST)" in header
    [row] = [row for row in rows if row.startswith(run_id)]
    assert _cell(run["started_at"]) in row
    assert json.loads(as_json.stdout)["created_at"] == run["created_at"]
    assert run["created_at"].endswith("Z")


def test_events_show_list_and_workers_give_local_times_that_name_the_zone(
    dev_server: DevServer,
) -> None:
    event_id = dev_server.client.send_event("cli/zoned", {"n": 32})
    event = dev_server.client.get_event(event_id)

    shown = _in_kolkata(dev_server.url, "events", "show", event_id)
    listed = _in_kolkata(dev_server.url, "events", "list", "--name", "cli/zoned")
    workers = _in_kolkata(dev_server.url, "workers")
    as_json = _in_kolkata(dev_server.url, "events", "list", "--name", "cli/zoned", "-o", "json")

    assert shown.returncode == 0, shown.stderr
    assert f"received {_local(event['received_at'], '%Y-%m-%d %H:%M:%S')} IST" in _lines(
        shown.stdout
    )
    header, *rows = _lines(listed.stdout)
    assert "received (IST)" in header
    [row] = [row for row in rows if row.startswith(event_id)]
    assert _cell(event["received_at"]) in row
    assert workers.returncode == 0, workers.stderr
    [worker] = dev_server.client.workers()
    heartbeat = _local(worker["heartbeat_at"], "%Y-%m-%d %H:%M")  # it beats on: to the minute
    assert f" {heartbeat}:" in workers.stdout and " IST " in workers.stdout
    assert json.loads(as_json.stdout)[0]["received_at"] == event["received_at"]


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process in New York's zone (EST in winter, EDT in summer), restored afterwards."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_table_cell_names_its_zone_when_daylight_saving_differs_from_now(
    new_york: None,
) -> None:
    winter = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    assert _format.zone(winter) == "EST"
    assert _format.moment_short("2026-12-07T14:04:05Z", winter) == "09:04:05"
    assert _format.moment_short("2026-11-20T14:04:05Z", winter) == "2026-11-20 09:04"
    assert _format.moment_short("2026-07-01T14:04:05Z", winter) == "2026-07-01 10:04 EDT"
    assert _format.moment_clock("2026-12-07T14:04:05Z", winter) == "09:04:05 EST"
    assert _format.moment_short(None) == "-"

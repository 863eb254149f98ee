"""The live display's lines fit 80 columns with the status whole, and its ETA counts down."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.console import Console

from stepline.cli._live import Countdown, plain_line, run_block

pytestmark = pytest.mark.timeout(10)


def _run(**changes: Any) -> dict[str, Any]:
    run: dict[str, Any] = {
        "id": "01RUN",
        "function_id": "stations-sync",
        "status": "RUNNING",
        "detail": None,
        "waiting_for": None,
        "progress": {
            "done": 3,
            "total": 5,
            "percent": 60.0,
            "eta_seconds": 2.0,
            "message": "page 4",
        },
        "counters": {"fetched": 150, "inserted": 0, "invalid": 6, "unchanged": 144, "updated": 0},
        "steps": [{"id": "page-3", "status": "completed", "wake_at": None}],
    }
    return {**run, **changes}


def _screen(run: dict[str, Any], seconds_left: float | None) -> list[str]:
    console = Console(width=80, no_color=True, force_terminal=False)
    with console.capture() as captured:
        console.print(run_block(run, seconds_left))
    return captured.get().splitlines()


def test_a_running_run_fits_80_columns_on_three_lines() -> None:
    bar, step, counters = _screen(_run(), 1.3)

    assert bar.startswith("stations-sync RUNNING ━") and bar.endswith(" 60% 3/5 ETA 1.3s")
    assert step == "  last step page-3 completed · page 4"
    assert counters == "  fetched=150 inserted=0 invalid=6 unchanged=144 updated=0"
    assert max(len(line) for line in (bar, step, counters)) <= 80


def test_a_long_function_name_gives_way_to_the_status_and_figures() -> None:
    run = _run(function_id="a-function-name-long-enough-to-fill-the-line", status="COMPLETED")
    bar, *_ = _screen(run, None)

    assert len(bar) <= 80
    assert "… COMPLETED ━" in bar and bar.endswith(" 60% 3/5")


def test_the_eta_counts_down_between_reports_and_is_set_again_by_the_next() -> None:
    countdown = Countdown()
    run = _run()

    shown = [countdown.seconds_left(run, now) for now in (100.0, 100.5, 101.5, 103.0)]
    later = _run(progress={**run["progress"], "done": 4, "eta_seconds": 1.0})

    assert shown == [2.0, 1.5, 0.5, 0.0]
    assert countdown.seconds_left(later, 103.2) == 1.0
    assert "ETA due" in plain_line(run, 0.0)


def test_the_step_executing_now_is_named_with_how_long_it_has_run() -> None:
    since = (datetime.now(UTC) - timedelta(seconds=12)).isoformat().replace("+00:00", "Z")
    run = _run(in_flight={"step_id": "page-4", "since": since})

    _, step, _ = _screen(run, 1.3)

    assert re.fullmatch(r"  executing step page-4 for 1[23]\.\ds · page 4", step), step

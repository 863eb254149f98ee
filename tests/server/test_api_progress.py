"""A run's ETA in the API, on both stores: the pace up to the last progress report, counted down
from that report while the run works towards the next one (it used to grow between reports)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import Step
from tests.engine.support import parked, start
from tests.server.conftest import Served


def _progress(served: Served, run_id: str) -> dict[str, Any]:
    figures: dict[str, Any] = served.http.get(f"/v1/runs/{run_id}").json()["data"]["progress"]
    return figures


def test_the_eta_counts_down_from_the_last_report(
    make_engine: Callable[..., Engine], serve: Callable[..., Served], clock: FakeClock
) -> None:
    app = stepline.App("progress")

    def first_quarter() -> None:
        clock.advance(10)  # the step takes 10 s

    @app.function(id="import", triggers=[stepline.event("progress/go")])
    def import_rows(ctx: stepline.Context[Step]) -> None:
        ctx.step.run("first-quarter", first_quarter)
        ctx.progress(1, 4, "a quarter done")
        ctx.step.sleep("pause", "1h")

    served = serve(make_engine(app))
    run_id = start(served.engine, "progress/go")
    run = parked(served.engine, run_id, "SLEEPING")
    assert run.started_at is not None
    reported = run.started_at + timedelta(seconds=10)

    figures = _progress(served, run_id)
    assert figures["percent"] == 25.0
    assert figures["eta_seconds"] == 30.0, "a quarter in 10 s: three more quarters take 30 s"
    assert figures["reported_at"] == reported.isoformat().replace("+00:00", "Z")
    clock.advance(12)
    assert _progress(served, run_id)["eta_seconds"] == 18.0, "counted down, not re-paced"
    clock.advance(100)
    assert _progress(served, run_id)["eta_seconds"] == 0.0, "overdue: due now, never negative"

"""Helpers for flow-control tests: runs of an event, runs that must stay queued, finished runs."""

from __future__ import annotations

from stepline.engine.engine import Engine
from stepline.store.base import RunRecord
from tests.engine.support import settle


def queued(engine: Engine, run_id: str, detail: str, seconds: float = 0.3) -> RunRecord:
    """Assert the run is still QUEUED with `detail` after the engine had a moment to start it."""
    settle(engine, seconds)
    run = engine.store.get_run(run_id)
    assert (run.status, run.detail) == ("QUEUED", detail), run
    return run


def completed(engine: Engine, run_id: str) -> RunRecord:
    """Wait for the run to end and assert it COMPLETED."""
    run = engine.wait_for_run(run_id, 10)
    assert run.status == "COMPLETED", (run.status, run.error, run.reason)
    return run


def runs_of(engine: Engine, event_id: str) -> list[RunRecord]:
    """Every run an event led to (started or skipped), oldest first."""
    runs = engine.operations.runs_for_event(event_id)
    return sorted(runs, key=lambda r: (r.created_at, r.id))


def skipped(run: RunRecord, detail: str) -> None:
    """Assert the run is a SKIPPED trigger with `detail`, a reason and no start."""
    assert (run.status, run.detail) == ("SKIPPED", detail), run
    assert run.reason, run
    assert run.started_at is None, run

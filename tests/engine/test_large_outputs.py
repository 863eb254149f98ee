"""Large step and run outputs go to the blob store; replays read them back; too large fails."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

import stepline
from stepline import errors
from stepline._retention import DEFAULT_RETENTION
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.engine.outputs import OutputLimits
from stepline.engine.retention import Pacing, prune, prune_rule
from stepline.sdk.step import Step
from stepline.store import schema as t
from stepline.store.base import RunRecord, Store
from stepline.store.blobs import BlobRef, blob_ref
from stepline.store.pruning import PrunePass
from stepline.store.sqlite import SqliteStore
from tests.conftest import FAST_SETTINGS
from tests.engine.support import eventually, start
from tests.flow.support import completed

DAY = timedelta(days=1)

SMALL_LIMITS = replace(FAST_SETTINGS, outputs=OutputLimits(inline_bytes=1024, max_bytes=64 * 1024))


def _rows(store: Store, table: Any) -> int:
    with store._read() as conn:  # type: ignore[attr-defined]  # (beside a running engine)
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _wait_parked(engine: Engine, run_id: str) -> RunRecord:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        run = engine.store.get_run(run_id)
        if run.detail == "SLEEPING":
            return run
        time.sleep(0.02)
    raise AssertionError(f"run {run_id} did not park: {engine.store.get_run(run_id)}")


def test_a_large_output_is_a_blob_that_a_replay_after_a_sleep_reads(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    app = stepline.App("big")
    report = {"rows": ["x" * 100] * 30}  # about 3 KiB of JSON: over the 1 KiB inline limit

    @app.function(id="report", triggers=[stepline.event("demo/report")])
    def fn(ctx: stepline.Context[Step]) -> dict[str, Any]:
        made = ctx.step.run("make", lambda: report)
        ctx.step.sleep("later", "1h")
        return {"copy": made, "rows": len(made["rows"])}

    engine = make_engine(app, settings=SMALL_LIMITS)
    [event_id] = engine.send({"name": "demo/report", "data": {}})
    [run] = engine.operations.runs_for_event(event_id)
    _wait_parked(engine, run.id)
    [made] = [s for s in engine.store.get_steps(run.id) if s.id == "make"]
    ref = blob_ref(made.output)
    assert ref is not None, made.output
    assert json.loads(engine.store.read_blob(ref)) == report
    clock.advance(3600)
    done = engine.wait_for_run(run.id, 10)
    assert done.status == "COMPLETED", done.error
    output_ref = blob_ref(done.output)
    assert output_ref is not None
    assert json.loads(engine.store.read_blob(output_ref)) == {"copy": report, "rows": 30}
    assert _rows(engine.store, t.blob_refs) == 2  # the step's blob and the run's


def test_outputs_under_the_inline_limit_stay_in_their_rows(
    make_engine: Callable[..., Engine],
) -> None:
    app = stepline.App("small")

    @app.function(id="small", triggers=[stepline.event("demo/small")])
    def fn(ctx: stepline.Context[Step]) -> str:
        return ctx.step.run("s", lambda: "y" * 900)

    engine = make_engine(app, settings=SMALL_LIMITS)
    [event_id] = engine.send({"name": "demo/small", "data": {}})
    [run] = engine.operations.runs_for_event(event_id)
    done = engine.wait_for_run(run.id, 10)
    assert done.output == json.dumps("y" * 900)
    assert _rows(engine.store, t.blobs) == 0


def test_an_output_over_the_limit_fails_its_step_once_naming_step_and_size(
    make_engine: Callable[..., Engine],
) -> None:
    app = stepline.App("huge")
    calls: list[int] = []

    @app.function(id="huge", triggers=[stepline.event("demo/huge")], retries=3)
    def fn(ctx: stepline.Context[Step]) -> str:
        def make() -> str:
            calls.append(1)
            return "z" * 100_000

        return ctx.step.run("dump", make)

    engine = make_engine(app, settings=SMALL_LIMITS)
    [event_id] = engine.send({"name": "demo/huge", "data": {}})
    [run] = engine.operations.runs_for_event(event_id)
    done = engine.wait_for_run(run.id, 10)
    assert done.status == "FAILED"
    error = json.loads(done.error or "{}")
    assert "step 'dump'" in error["message"]
    assert "97.7 KiB" in error["message"] and "64 KiB" in error["message"]
    assert len(calls) == 1  # not retried
    [step] = engine.store.get_steps(run.id)
    assert step.status == "failed" and step.output is None
    assert _rows(engine.store, t.blobs) == 0


def test_a_result_over_the_limit_fails_the_run(make_engine: Callable[..., Engine]) -> None:
    app = stepline.App("huge-result")

    @app.function(id="huge-result", triggers=[stepline.event("demo/huge-result")])
    def fn(ctx: stepline.Context[Step]) -> str:
        return "r" * 70_000

    engine = make_engine(app, settings=SMALL_LIMITS)
    [event_id] = engine.send({"name": "demo/huge-result", "data": {}})
    [run] = engine.operations.runs_for_event(event_id)
    done = engine.wait_for_run(run.id, 10)
    assert done.status == "FAILED"
    assert "the function's result is 68.4 KiB" in json.loads(done.error or "{}")["message"]


def test_the_same_large_output_is_stored_once_and_held_by_each_run(
    make_engine: Callable[..., Engine],
) -> None:
    app = stepline.App("twice")

    @app.function(id="twice", triggers=[stepline.event("demo/twice")])
    def fn(ctx: stepline.Context[Step]) -> int:
        return len(ctx.step.run("same", lambda: ["same"] * 500))

    engine = make_engine(app, settings=SMALL_LIMITS)
    ids = engine.send([{"name": "demo/twice", "data": {}}, {"name": "demo/twice", "data": {}}])
    runs = [r for event_id in ids for r in engine.operations.runs_for_event(event_id)]
    for run in runs:
        assert engine.wait_for_run(run.id, 10).status == "COMPLETED"
    assert _rows(engine.store, t.blobs) == 1
    assert _rows(engine.store, t.blob_refs) == 2


def _blob_kept(store: Store, ref: BlobRef) -> bool:
    try:
        return store.read_blob(ref) is not None
    except errors.NotFound:
        return False


def test_retention_removes_blobs_with_the_last_run_holding_them(
    make_engine: Callable[..., Engine], clock: FakeClock, store: Store
) -> None:
    app = stepline.App("kept-blobs")

    def report(kind: str) -> list[str]:
        return [kind] * 400  # a few KiB: a blob under the 1 KiB inline limit

    @app.function(id="daily", triggers=[stepline.event("demo/daily")])
    def daily(ctx: stepline.Context[Step]) -> int:
        return len(ctx.step.run("report", report, ctx.event.data["kind"]))

    @app.function(id="archive", triggers=[stepline.event("demo/archive")], retention="forever")
    def archive(ctx: stepline.Context[Step]) -> int:
        return len(ctx.step.run("report", report, "shared"))

    engine = make_engine(app, settings=replace(SMALL_LIMITS, scheduler=False))
    runs = {
        kind: start(engine, f"demo/{'archive' if kind == 'archived' else 'daily'}", {"kind": kind})
        for kind in ("alone", "shared", "archived")
    }
    refs: dict[str, BlobRef] = {}
    for kind, run_id in runs.items():
        completed(engine, run_id)
        [step] = engine.store.get_steps(run_id)
        ref = blob_ref(step.output)
        assert ref is not None, step.output
        refs[kind] = ref
    assert refs["shared"] == refs["archived"]  # the same bytes: one blob, held by both runs
    orphan = store.put_blob(b'"written by a step whose commit failed"', clock.now())
    rule = prune_rule(store.list_functions(), DEFAULT_RETENTION, clock.now() + 31 * DAY)
    dry = PrunePass(rule=rule, dry_run=True)  # what the scheduler will remove
    counted = prune(store, dry, Pacing(most=2, batch_seconds=1, pause=0))
    assert (counted.runs, counted.blobs) == (2, 2)  # "alone", and the orphan
    assert all(_blob_kept(store, ref) for ref in (refs["alone"], orphan))

    clock.advance(31 * DAY)
    fresh = store.put_blob(b'"just written, its step not yet committed"', clock.now())
    engine.scheduler.tick()

    assert not _blob_kept(store, refs["alone"]) and not _blob_kept(store, orphan)
    assert _blob_kept(store, refs["archived"]), "the archive's run still holds it"
    assert _blob_kept(store, fresh), "written within the hour: its reference may be on the way"
    assert _rows(store, t.blobs) == 2
    if isinstance(store, SqliteStore):
        blob_dir = store.path.with_name(f"{store.path.name}.blobs")
        files = sorted(p.name for p in blob_dir.rglob("*") if p.is_file())
        assert files == sorted([refs["archived"].id, fresh.id])
    else:
        assert _rows(store, t.blob_chunks) == 2


def test_an_invoked_run_s_large_result_reaches_its_parent_through_the_blob(
    make_engine: Callable[..., Engine], store: Store
) -> None:
    app = stepline.App("invoking")
    rows = ["row"] * 500  # about 3.5 KiB: a blob

    @app.function(id="child")
    def child(ctx: stepline.Context[Step]) -> list[str]:
        return rows

    @app.function(id="parent", triggers=[stepline.event("demo/parent")])
    def parent(ctx: stepline.Context[Step]) -> dict[str, int]:
        got = ctx.step.invoke("call", function="child", data={})
        first, _ = ctx.step.parallel("pair", [lambda: rows, lambda: len(rows)])
        assert isinstance(got, list) and isinstance(first, list)
        return {"invoked": len(got), "branch": len(first)}

    engine = make_engine(app, settings=SMALL_LIMITS)
    run_id = start(engine, "demo/parent")
    done = completed(engine, run_id)
    assert json.loads(done.output or "null") == {"invoked": 500, "branch": 500}
    call = next(s for s in store.get_steps(run_id) if s.id == "call")
    assert blob_ref(call.output) is not None  # the child's reference, copied
    assert _rows(store, t.blobs) == 1  # the child's result and the branch's: the same bytes


def test_a_blob_folder_that_cannot_be_written_is_an_outage_not_a_failure(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A full disk or a missing blob folder (SQLite only: PostgreSQL keeps blobs in a table)
    leaves the step uncommitted, as a database outage does: the run is replayed once its lease
    expires, and the step runs again. It neither fails the run nor reaches the user's code."""
    app = stepline.App("outage")
    calls: list[int] = []

    @app.function(id="outage", triggers=[stepline.event("demo/outage")], retries=0)
    def fn(ctx: stepline.Context[Step]) -> int:
        def make() -> list[str]:
            calls.append(1)
            return ["row"] * 500

        return len(ctx.step.run("make", make))

    store = SqliteStore(tmp_path / "stepline.db")
    store.upgrade()
    blocker = tmp_path / "stepline.db.blobs"
    blocker.write_text("a file where the blob folder should be")
    engine = Engine(app, db=store, upgrade=False, clock=clock, settings=SMALL_LIMITS).start()
    try:
        run_id = start(engine, "demo/outage")
        eventually(lambda: len(calls) == 1, what="the step's first execution")
        # its commit failed on the blob and the slot let the run go (the lease stays held)
        eventually(lambda: engine.worker.inflight == 0, what="the failed commit")
        blocker.unlink()
        run = engine.store.get_run(run_id)
        assert run.status == "RUNNING" and run.failures == 0, run
        clock.advance(FAST_SETTINGS.worker.lease_seconds + 1)  # its lease expires: replayed
        done = completed(engine, run_id)
    finally:
        engine.stop(grace_seconds=2)
    assert json.loads(done.output or "null") == 500
    assert len(calls) == 2

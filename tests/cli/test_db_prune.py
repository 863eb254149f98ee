"""`stepline db prune --older-than D [--function F] [--dry-run]` on both stores: it prints what it
removes, a dry run removes nothing, live runs and their events stay; `--retain` refuses bad
values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from click.testing import CliRunner

import stepline
from stepline.cli.main import cli
from stepline.engine.engine import Engine
from stepline.sdk.step import Step
from stepline.store.base import RunFilter, Store
from stepline.store.sql import SqlStore
from stepline.store.sqlite import SqliteStore
from tests.conftest import FAST_SETTINGS
from tests.engine.support import parked, start
from tests.flow.support import completed


def database(store: Store) -> str:
    """What `--db` takes to reach the test's store."""
    if isinstance(store, SqliteStore):
        return str(store.path)
    assert isinstance(store, SqlStore)
    return store.engine.url.render_as_string(hide_password=False)


def prune_app() -> stepline.App:
    app = stepline.App("prune")

    @app.function(id="work", triggers=[stepline.event("prune/work")])
    def work(ctx: stepline.Context[Step]) -> str:
        ctx.log.info("working")
        return ctx.step.run("one", lambda: "done")

    @app.function(id="other", triggers=[stepline.event("prune/other")])
    def other(ctx: stepline.Context[Step]) -> str:
        return ctx.step.run("one", lambda: "done")

    @app.function(id="waiter", triggers=[stepline.event("prune/wait")])
    def waiter(ctx: stepline.Context[Step]) -> object:
        return ctx.step.wait_for_event("reply", event="prune/reply", timeout="1000d")

    return app


def seed(make_engine: Callable[..., Engine]) -> Engine:
    """Three ended runs of "work", one of "other", a waiting run, an event sent to nobody.

    The fake clock stands at 2026-01-01, so all of it is old by the real clock the CLI reads.
    """
    engine = make_engine(prune_app(), settings=replace(FAST_SETTINGS, scheduler=False))
    for name in ("prune/work", "prune/work", "prune/work", "prune/other"):
        completed(engine, start(engine, name))
    parked(engine, start(engine, "prune/wait"), "WAITING")
    engine.send({"name": "prune/nobody", "data": {}})
    return engine


def counts(store: Store) -> dict[str, int]:
    runs = store.list_runs(RunFilter(limit=100))
    return {
        "runs": len(runs),
        "steps": sum(len(store.get_steps(r.id)) for r in runs),
        "events": len(store.list_events(None, 100, None)),
    }


def test_a_dry_run_prints_what_prune_then_removes_and_removes_nothing(
    make_engine: Callable[..., Engine], store: Store
) -> None:
    seed(make_engine)
    before = counts(store)
    runner = CliRunner()
    args = ["db", "prune", "--older-than", "30d", "--db", database(store)]

    dry = runner.invoke(cli, [*args, "--dry-run"])

    assert dry.exit_code == 0, dry.output
    expected = (
        "4 runs, 4 steps, 0 attempts, 3 log lines, 5 events, 0 blobs (runs that ended before "
    )
    assert dry.output.startswith(f"Would remove {expected}"), dry.output
    assert counts(store) == before

    done = runner.invoke(cli, args)

    assert done.exit_code == 0, done.output
    assert done.output.startswith(f"Removed {expected}"), done.output
    [left] = store.list_runs(RunFilter(limit=100))
    assert (left.function_id, left.detail) == ("waiter", "WAITING")
    assert [e.name for e in store.list_events(None, 100, None)] == ["prune/wait"]
    again = runner.invoke(cli, args)
    assert again.output.startswith("Removed 0 runs, 0 steps, 0 attempts, 0 log lines, 0 events")


def test_prune_of_one_function_keeps_the_others_and_events_sent_to_nobody(
    make_engine: Callable[..., Engine], store: Store
) -> None:
    seed(make_engine)

    result = CliRunner().invoke(
        cli,
        ["db", "prune", "--db", database(store), "--function", "work"],
        env={"STEPLINE_PRUNE_OLDER_THAN": "1h"},
    )

    assert result.exit_code == 0, result.output
    assert result.output.startswith("Removed 3 runs, 3 steps, 0 attempts, 3 log lines, 3 events")
    assert "runs of work that ended before" in result.output
    assert sorted(r.function_id for r in store.list_runs(RunFilter(limit=100))) == [
        "other",
        "waiter",
    ]
    names = sorted(e.name for e in store.list_events(None, 100, None))
    assert names == ["prune/nobody", "prune/other", "prune/wait"]


def test_bad_durations_are_refused_naming_the_option() -> None:
    runner = CliRunner()

    older = runner.invoke(cli, ["db", "prune", "--older-than", "a month"])
    retain = runner.invoke(cli, ["dev", "--retain", "30s"])

    assert older.exit_code == 2
    assert "Invalid value for '--older-than'" in older.output
    assert "'a month' is not a duration" in older.output
    assert retain.exit_code == 2
    assert "Invalid value for '--retain'" in retain.output
    assert "a retention is at least 1m" in retain.output

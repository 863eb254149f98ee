"""`step.parallel` across real worker processes: with two workers of one slot each, the two
branches of a run execute in the two processes at the same time and the run completes with
their results in order; a branch whose step fails once is retried alone (the other branch's
step executes once). `def` and `async def` functions alike."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stepline.engine.operations import Operations
from stepline.store.base import RunFilter, RunRecord, Store
from tests.scale.app_workers import serve
from tests.scale.parallel_app import ASYNC_EVENT, EVENT
from tests.scale.support import Cluster, eventually

PARALLEL_APP = Path(__file__).with_name("parallel_app.py")
FUNCTIONS = {EVENT: "pair", ASYNC_EVENT: "pair-async"}
STEP_SECONDS = 3.0  # long enough that the idle worker claims the second branch meanwhile
FINISH_SECONDS = 60.0


@dataclass(frozen=True)
class Execution:
    """One execution of a branch's step, as the step recorded it."""

    step: str
    pid: int
    start: float
    outcome: str  # "end" or "fail"
    finish: float


def executions(path: Path, tag: str) -> list[Execution]:
    """The finished executions of `tag`'s steps, in the order they began."""
    begun: dict[tuple[str, int], float] = {}
    found = []
    for line in path.read_text().splitlines() if path.exists() else []:
        what, mark_tag, step, pid, at = line.split()
        if mark_tag != tag:
            continue
        if what == "start":
            begun[(step, int(pid))] = float(at)
        else:
            start = begun.pop((step, int(pid)))
            found.append(Execution(step, int(pid), start, what, float(at)))
    return sorted(found, key=lambda e: e.start)


def send(store: Store, name: str, data: dict[str, Any]) -> None:
    """Store one event, routed to the functions the workers registered."""
    Operations(store).send({"name": name, "data": data})


def ended_run(store: Store, function_id: str) -> RunRecord:
    """The function's one top-level run, once it has ended."""

    def probe() -> RunRecord | None:
        runs = store.list_runs(RunFilter(function_id=function_id))
        [run] = [r for r in runs if r.parent_run_id is None]
        return run if run.ended else None

    return eventually(probe, what=f"the {function_id} run to end", timeout=FINISH_SECONDS)


def branch_runs(store: Store, run: RunRecord) -> list[RunRecord]:
    """The run's branch runs, oldest first."""
    found = store.list_runs(RunFilter(parent_run_id=run.id, trigger_kind="parallel"))
    return sorted(found, key=lambda r: (r.created_at, r.id))


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_branches_execute_in_two_processes_at_once_and_the_run_completes_in_order(
    store: Store, cluster: Cluster
) -> None:
    workers = serve(store, cluster, PARALLEL_APP, set(FUNCTIONS.values()), 2, slots=1)

    for name, function_id in FUNCTIONS.items():
        send(store, name, {"tag": function_id, "seconds": STEP_SECONDS})
        run = ended_run(store, function_id)

        assert run.status == "COMPLETED", (run.error, cluster.logs())
        assert json.loads(run.output or "") == ["a done", "b done"]
        a, b = sorted(executions(cluster.effects, function_id), key=lambda e: e.step)
        assert (a.step, a.outcome, b.step, b.outcome) == ("a", "end", "b", "end")
        assert {a.pid, b.pid} == {w.pid for w in workers}, "one process executed both branches"
        assert max(a.start, b.start) < min(a.finish, b.finish), "the branches did not overlap"
        branches = branch_runs(store, run)
        assert [(r.status, json.loads(r.output or "")) for r in branches] == [
            ("COMPLETED", "a done"),
            ("COMPLETED", "b done"),
        ]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_branch_failing_once_is_retried_alone(store: Store, cluster: Cluster) -> None:
    serve(store, cluster, PARALLEL_APP, set(FUNCTIONS.values()), 2, slots=1)

    for name, function_id in FUNCTIONS.items():
        send(store, name, {"tag": function_id, "seconds": 0.2, "flaky": "b"})
    for function_id in FUNCTIONS.values():
        run = ended_run(store, function_id)

        assert run.status == "COMPLETED", (run.error, cluster.logs())
        assert json.loads(run.output or "") == ["a done", "b done"]
        done = executions(cluster.effects, function_id)
        assert sorted((e.step, e.outcome) for e in done) == [
            ("a", "end"),
            ("b", "end"),
            ("b", "fail"),
        ]
        steps = {s.id: s for s in store.get_steps(run.id) if s.kind == "run"}
        assert {i: (s.status, s.attempts) for i, s in steps.items()} == {
            "pair[0]/a": ("completed", 1),
            "pair[1]/b": ("completed", 2),
        }
        branch_a, branch_b = branch_runs(store, run)
        assert store.get_attempts(branch_a.id) == []
        [failed] = store.get_attempts(branch_b.id)
        assert failed.step_id == "pair[1]/b"
        assert "fails its first attempt" in failed.error

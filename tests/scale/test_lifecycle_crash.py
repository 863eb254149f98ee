"""Exactly one lifecycle event per run end, however a SIGKILL cuts the ending short.

Runs that fail for good (`def` and `async def`) and runs that complete execute on three worker
processes; as each run reaches its last step, the worker executing it is SIGKILLed after a delay
varied from run to run (inside the step, around its commit, in the ending transaction, after
it) and replaced. Once every run ended: each failed run has exactly one
`stepline/function.failed` event and one failure-handler run, and each run exactly one
`stepline/function.finished` event and one run of the function triggered by it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections import Counter
from pathlib import Path

import pytest

from stepline.engine.operations import Operations
from stepline.store.base import (
    ACTIVE_STATUSES,
    FAILED_EVENT,
    FINISHED_EVENT,
    EventRecord,
    RunFilter,
    RunRecord,
    Store,
)
from tests.scale.app_workers import serve, spawn_worker
from tests.scale.lifecycle_app import DOOMED, DOOMED_ASYNC, FINE
from tests.scale.support import Cluster, eventually, status_counts

LIFECYCLE_APP = Path(__file__).with_name("lifecycle_app.py")
RUNS_PER_FUNCTION = 6
SENT = {DOOMED: "doomed", DOOMED_ASYNC: "doomed-async", FINE: "fine"}
HANDLERS = {"doomed-failure", "doomed-async-failure", "on-finished"}
WORKERS = 3
SLOTS = 2
LEASE_SECONDS = 2.0
KILL_DELAYS = [0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2, 0.3]  # after the last step's mark
END_SECONDS = 120.0


class Killer(threading.Thread):
    """SIGKILLs the worker executing a run's last step, `KILL_DELAYS[n]` after the step's mark
    (n: kills so far), and starts a replacement; each run is cut short once at most (a run whose
    worker died for another run's sake is cut at its next execution of the step, if any).
    `status_at_kill` records each killed run's status just after the kill."""

    def __init__(
        self, store: Store, cluster: Cluster, workers: list[subprocess.Popen[bytes]]
    ) -> None:
        super().__init__(name="killer", daemon=True)
        self.status_at_kill: dict[str, str] = {}
        self.error: BaseException | None = None
        self._store = store
        self._cluster = cluster
        self._workers = workers
        self._seen: set[tuple[str, int]] = set()
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            while not self._halt.wait(0.01):
                for run_id, pid in self._new_marks():
                    self._seen.add((run_id, pid))
                    if run_id not in self.status_at_kill:
                        self._kill(run_id, pid)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _new_marks(self) -> list[tuple[str, int]]:
        """(run id, pid) of each execution of a last step not handled yet, in order."""
        effects = self._cluster.effects
        lines = effects.read_text().splitlines() if effects.exists() else []
        marks = [(run_id, int(pid)) for _, run_id, pid, _ in (line.split() for line in lines)]
        return [mark for mark in dict.fromkeys(marks) if mark not in self._seen]

    def _kill(self, run_id: str, pid: int) -> None:
        [victim] = [w for w in self._workers if w.pid == pid]
        delay = KILL_DELAYS[len(self.status_at_kill) % len(KILL_DELAYS)]
        if self._halt.wait(delay) or victim.poll() is not None:
            return  # halted, or killed for an earlier run already
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        self.status_at_kill[run_id] = self._store.get_run(run_id).status
        replacement = spawn_worker(
            self._cluster, LIFECYCLE_APP, slots=SLOTS, lease_seconds=LEASE_SECONDS
        )
        self._workers.append(replacement)

    def finish(self) -> None:
        self._halt.set()
        self.join(20)


def events_named(store: Store, name: str) -> list[EventRecord]:
    """Every stored event named `name`, all pages."""
    found: list[EventRecord] = []
    while page := store.list_events(name, 100, found[-1].internal_id if found else None):
        found.extend(page)
    return found


def runs_of(store: Store, function_id: str) -> list[RunRecord]:
    """Every run of a function (no paging needed at this size)."""
    runs = store.list_runs(RunFilter(function_id=function_id, limit=1000))
    assert len(runs) < 1000
    return runs


def all_ended(store: Store, expected: int) -> bool:
    """True once `expected` runs exist and none is active."""
    counts = status_counts(store)
    active = sum(n for status, n in counts.items() if status in ACTIVE_STATUSES)
    return sum(counts.values()) >= expected and active == 0


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_one_lifecycle_event_and_one_handler_run_per_run_end_despite_sigkills(
    store: Store, cluster: Cluster
) -> None:
    functions = set(SENT.values()) | HANDLERS
    workers = serve(
        store, cluster, LIFECYCLE_APP, functions, WORKERS, slots=SLOTS, lease_seconds=LEASE_SECONDS
    )
    killer = Killer(store, cluster, workers)
    killer.start()
    try:
        Operations(store).send(
            [{"name": name, "data": {"n": n}} for n in range(RUNS_PER_FUNCTION) for name in SENT]
        )
        # every run, plus one failure-handler run per failed one and one on-finished run each
        expected = RUNS_PER_FUNCTION * (len(SENT) + 2 + len(SENT))
        eventually(
            lambda: all_ended(store, expected),
            what=f"{expected} runs to end",
            timeout=END_SECONDS,
            pause=0.2,
        )
    finally:
        killer.finish()
    assert killer.error is None, killer.error
    print(f"\nstatus just after each kill: {Counter(killer.status_at_kill.values())}")
    assert killer.status_at_kill, "no worker was killed"

    failed = {r.id for f in ("doomed", "doomed-async") for r in runs_of(store, f)}
    completed = {r.id for r in runs_of(store, "fine")}
    assert {r.status for f in ("doomed", "doomed-async") for r in runs_of(store, f)} == {"FAILED"}
    assert {r.status for r in runs_of(store, "fine")} == {"COMPLETED"}
    assert len(failed) == 2 * RUNS_PER_FUNCTION and len(completed) == RUNS_PER_FUNCTION

    failed_events = events_named(store, FAILED_EVENT)
    assert Counter(json.loads(e.data)["run_id"] for e in failed_events) == dict.fromkeys(failed, 1)
    finished_events = events_named(store, FINISHED_EVENT)
    assert Counter(json.loads(e.data)["run_id"] for e in finished_events) == dict.fromkeys(
        failed | completed, 1
    )

    handled_failures = [
        r for f in ("doomed-failure", "doomed-async-failure") for r in runs_of(store, f)
    ]
    assert Counter(json.loads(r.output or "") for r in handled_failures) == dict.fromkeys(failed, 1)
    handled_ends = runs_of(store, "on-finished")
    assert Counter(json.loads(r.output or "") for r in handled_ends) == dict.fromkeys(
        failed | completed, 1
    )
    assert {r.status for r in handled_failures + handled_ends} == {"COMPLETED"}
    assert sum(status_counts(store).values()) == expected, status_counts(store)

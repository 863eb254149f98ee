"""Chaos: 1,000 runs of 5 steps on 3 worker processes while a random worker is SIGKILLed (and
replaced) every 2-3 s, and, on PostgreSQL, the database restarts once midway. Every accepted
event keeps its run, every run completes, and a step runs a second time only when the process
executing it was killed (or the database went away) before its commit.

The counts are printed (see them with -s) and written to test-output/chaos-<store>.json.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from stepline.store.base import Store
from tests.scale.support import (
    Cluster,
    Effect,
    Sender,
    executions,
    is_postgres,
    read_effects,
    run_event_ids,
    start_workers,
    status_counts,
)

RUNS = 1000
STEPS = 5
STEP_SECONDS = 0.1
WORKERS = 3
SLOTS = 8
LEASE_SECONDS = 2.0
BOUND_SECONDS = 240.0
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


class Killer(threading.Thread):
    """Every 2-3 s, SIGKILLs a random worker by its PID and starts a replacement (same args).

    A worker that exited by itself (one started while the database was down refuses to start)
    is recorded in `exited` and replaced too.
    """

    def __init__(self, cluster: Cluster, workers: list[subprocess.Popen[bytes]]) -> None:
        super().__init__(name="killer", daemon=True)
        self.kills: dict[int, float] = {}  # pid → when it was killed
        self.exited: dict[int, tuple[float, int]] = {}  # pid → (when it started, exit code)
        self.error: BaseException | None = None
        self._cluster = cluster
        self._workers = workers
        self._born = {worker.pid: time.time() for worker in workers}
        self._rng = random.Random(20260101)
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            while not self._halt.wait(self._rng.uniform(2.0, 3.0)):
                for worker in list(self._workers):
                    if worker.poll() is not None:
                        self.exited[worker.pid] = (self._born[worker.pid], worker.returncode)
                        self._replace(worker)
                victim = self._rng.choice(self._workers)
                os.kill(victim.pid, signal.SIGKILL)
                self.kills[victim.pid] = time.time()
                victim.wait(10)
                self._replace(victim)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _replace(self, worker: subprocess.Popen[bytes]) -> None:
        replacement = self._cluster.worker(slots=SLOTS, lease_seconds=LEASE_SECONDS)
        self._born[replacement.pid] = time.time()
        self._workers[self._workers.index(worker)] = replacement

    def finish(self) -> None:
        self._halt.set()
        self.join(20)


def unexplained_repeats(
    effects: list[Effect], kills: dict[int, float], outage: tuple[float, float] | None
) -> list[Effect]:
    """Executions followed by another of the same step that no kill or outage accounts for."""
    by_step: dict[tuple[str, str], list[Effect]] = defaultdict(list)
    for effect in effects:
        by_step[(effect.run, effect.step)].append(effect)
    suspects = []
    for runs in by_step.values():
        for earlier in sorted(runs, key=lambda e: e.at)[:-1]:
            killed = earlier.pid in kills and earlier.at < kills[earlier.pid]
            cut_off = outage is not None and outage[0] - 5 < earlier.at < outage[1]
            if not (killed or cut_off):
                suspects.append(earlier)
    return suspects


@pytest.fixture
def store(restartable_store: Store) -> Store:
    """The test stops PostgreSQL: its own server (`own_postgres`), never the machine's."""
    return restartable_store


@pytest.mark.slow
@pytest.mark.timeout(BOUND_SECONDS + 60)
def test_chaos_every_run_completes_and_only_interrupted_steps_repeat(
    store: Store, cluster: Cluster, request: pytest.FixtureRequest
) -> None:
    kind = "postgres" if is_postgres(store) else "sqlite"
    began = time.monotonic()
    workers = start_workers(store, cluster, WORKERS, slots=SLOTS, lease_seconds=LEASE_SECONDS)
    cluster.server()
    sender = Sender(cluster, RUNS, {"steps": STEPS, "seconds": STEP_SECONDS}, batch=25, pause=0.3)
    killer = Killer(cluster, workers)
    sender.start()
    killer.start()
    outage: tuple[float, float] | None = None
    running_at_outage = 0
    try:
        while True:
            counts = status_counts(store)
            if is_postgres(store) and outage is None and counts.get("COMPLETED", 0) >= RUNS // 3:
                running_at_outage = counts.get("RUNNING", 0)
                stopped_at = time.time()
                database = request.getfixturevalue("own_postgres")
                database.halt()
                time.sleep(2)
                database.resume()
                outage = (stopped_at, time.time())
            if counts == {"COMPLETED": RUNS} and len(sender.accepted) == RUNS:
                break
            elapsed = time.monotonic() - began
            assert elapsed < BOUND_SECONDS, (
                f"after {elapsed:.0f}s: {counts}, {len(killer.kills)} kills"
            )
            assert killer.error is None, killer.error
            time.sleep(0.25)
    finally:
        killer.finish()
    elapsed = time.monotonic() - began
    sender.finish(10)

    runs = run_event_ids(store)
    assert set(sender.accepted.values()) <= set(runs), "an accepted event lost its run"
    effects = read_effects(cluster.effects)
    done = executions(effects)
    assert {(run, f"s{i}") for run in runs.values() for i in range(1, STEPS + 1)} == set(done)
    duplicates = sum(n - 1 for n in done.values())
    bound = len(killer.kills) * SLOTS + (WORKERS * SLOTS if outage else 0)
    report: dict[str, object] = {
        "store": kind,
        "runs": len(runs),
        "steps_executed": len(effects),
        "duplicates": duplicates,
        "duplicate_bound": bound,
        "kills": len(killer.kills),
        "database_restarts": int(outage is not None),
        "running_at_restart": running_at_outage,
        "refused_posts": sender.failures,
        "workers_that_exited_by_themselves": len(killer.exited),
        "elapsed_seconds": round(elapsed, 1),
    }
    print(f"\nchaos[{kind}]: {json.dumps(report)}")
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / f"chaos-{kind}.json").write_text(json.dumps(report, indent=2) + "\n")

    assert killer.kills, "the killer never struck"
    # Only a worker starting while the database was down may have given up (exit code 2).
    for pid, (started, code) in killer.exited.items():
        assert outage is not None and outage[0] - 3 < started < outage[1] and code == 2, (
            pid,
            code,
        )
    assert duplicates <= bound, report
    assert unexplained_repeats(effects, killer.kills, outage) == []

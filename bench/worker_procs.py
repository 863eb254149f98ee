"""W1's worker processes: `stepline worker` children on one database (SQLite file or PostgreSQL).

Each serves its metrics on a loopback port, read for the transactions and statements its
store ran (`worker_store_counts`).
"""

from __future__ import annotations

import os
from pathlib import Path

import workload
from harness import STEPLINE, Child, free_port, stop_all, store_counts

W1_APP = str(Path(workload.__file__).resolve()) + ":app"


def worker_cmd(url: str, slots: int, app: str) -> list[str]:
    return [str(STEPLINE), "worker", app, "--db", url, "--slots", str(slots)]


def start_workers(
    url: str, n: int, slots: int, logs: Path, app: str = W1_APP, *, pin: bool = False
) -> list[Child]:
    """`n` `stepline worker APP` children, each ready (functions registered, claiming).

    Each serves its metrics on a loopback port (`metrics_url`, for `store_counts`). With
    `pin` (and at least `n` CPUs), each runs on a CPU of its own (`--cpu`), as
    `stepline dev --workers N` runs them.
    """
    cpus = sorted(os.sched_getaffinity(0))
    pinned = pin and len(cpus) >= n
    children: list[Child] = []
    try:
        # One after another: workers starting at the same moment race in registering the
        # functions (`sync_functions` is UPDATE-then-INSERT, so both INSERT and one fails).
        for i in range(n):
            port = free_port()
            cmd = [*worker_cmd(url, slots, app), "--grace-seconds", "5"]
            if pinned:
                cmd += ["--cpu", str(cpus[i])]
            child = Child([*cmd, "--metrics-port", str(port)], logs / f"worker{i}.log")
            child.metrics_url = f"http://127.0.0.1:{port}/metrics"
            children.append(child)
            child.wait_line("Stepline worker", timeout_s=60)
    except BaseException:
        stop_all(children)
        raise
    return children


def worker_store_counts(children: list[Child]) -> tuple[int, int]:
    """(write transactions, statements) the workers' stores ran so far."""
    counts = [store_counts(child.metrics_url) for child in children]
    return sum(tx for tx, _ in counts), sum(st for _, st in counts)

"""Retention: W2 latency while 100,000 old runs are pruned, and a steady load's database size.

Two measurements per store:

- `prune_under_w2`: `--retention-runs` (100,000) ended runs written straight into the tables
  (each with its event, two steps and a log line; ended 31 to 90 days ago; SQLite
  `executemany`, PostgreSQL `COPY`, a few large transactions), then W2 as `run.py` measures it
  (in-process engine, `Engine.send`, first step started) `--latency-runs` times without pruning
  (`baseline`) and again while a thread prunes them all (`during_prune`) on the engine's own
  store, as the scheduler leader does (`engine.retention.prune` with `RetentionSettings`'
  pacing: batches whose write transaction takes about 5 ms on SQLite, 10 ms on PostgreSQL, up
  to 100 runs; at least 20 ms and three times the last transaction between them). Reported:
  both W2 distributions, the W2 samples taken while the prune ran, the prune's duration, rows
  removed, and each batch's write transaction's time (the longest is the longest a write lock
  was held).
- `steady_load`: an in-process engine whose functions keep ended runs one minute
  (`RetentionSettings(default=1m, every=10s)`: the scheduler's own pruning), under a steady load
  of `--retention-rate` W1 runs per second (three steps each) for `--retention-seconds`;
  the database size is sampled every 10 s (SQLite: the file plus its WAL; PostgreSQL: the
  total size of the tables that grow with runs). A PostgreSQL server with autovacuum off (the
  test server here) gets a `VACUUM` of those tables every 30 s, as autovacuum would. Once runs
  start to leave (after the first minute) the size should level off.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import workload
from harness import idle_between_runs, percentiles, progress, scratch_dir
from postgres_parts import bench_database, retrying
from w4_history import (
    STEP_COLUMNS,
    TableRows,
    completed_step,
    ulid_at,
    write_postgres,
    write_sqlite,
)

from stepline.engine.engine import Engine, EngineSettings
from stepline.engine.retention import RetentionSettings, prune
from stepline.store import open_store
from stepline.store.base import Store
from stepline.store.pruning import PruneCounts, PrunePass, PruneRule

SEED_CHUNK = 25_000
SCHEDULER = RetentionSettings()
VACUUM_EVERY_S = 30.0
DAY = 86400.0
GROWING_TABLES = ("runs", "steps", "events", "run_logs", "attempts", "queue")
RUN_COLUMNS = (
    "id",
    "function_id",
    "status",
    "trigger_kind",
    "event_id",
    "event_ids",
    "attempt",
    "failures",
    "output",
    "created_at",
    "started_at",
    "ended_at",
    "counters",
)
EVENT_COLUMNS = ("internal_id", "id", "name", "data", "user", "ts", "received_at", "source")
LOG_COLUMNS = ("run_id", "ts", "level", "message", "step_id")
# Nothing but the measured prune touches the seeded runs: the engine's own scheduler keeps all.
QUIET = EngineSettings(retention=RetentionSettings(default=None))

Rows = dict[str, list[tuple[Any, ...]]]


def seed_rows(n: int, seed: int) -> Iterator[Rows]:
    """`n` ended runs of an unregistered function, `SEED_CHUNK` at a time, oldest first."""
    rng = random.Random(seed)
    now = time.time()
    start, span = now - 90 * DAY, 59 * DAY
    chunk: Rows = {"runs": [], "events": [], "steps": [], "run_logs": []}
    for i in range(n):
        ended = start + span * (i + rng.random()) / n
        event_id, run_id = ulid_at(ended - 2, rng), ulid_at(ended - 1, rng)
        data = json.dumps({"i": i})
        chunk["events"].append(
            (event_id, event_id, "bench/old", data, "{}", ended - 2, ended - 2, "api")
        )
        chunk["runs"].append(
            (
                run_id,
                "history",
                "COMPLETED",
                "event",
                event_id,
                json.dumps([event_id]),
                0,
                0,
                '"done"',
                ended - 1.5,
                ended - 1,
                ended,
                "{}",
            )
        )
        for position in (0, 1):
            output = json.dumps({"run": i, "step": position})
            step = completed_step(
                run_id, f"{position:040d}", f"s{position}", position, output, ended - 1, ended
            )
            chunk["steps"].append(step)
        chunk["run_logs"].append((run_id, ended, "info", f"run {i} done", "s1"))
        if len(chunk["runs"]) == SEED_CHUNK:
            yield chunk
            chunk = {"runs": [], "events": [], "steps": [], "run_logs": []}
    if chunk["runs"]:
        yield chunk


_COLUMNS = {
    "runs": RUN_COLUMNS,
    "events": EVENT_COLUMNS,
    "steps": STEP_COLUMNS,
    "run_logs": LOG_COLUMNS,
}


def _tables(chunk: Rows) -> list[TableRows]:
    return [(table, _COLUMNS[table], rows) for table, rows in chunk.items()]


def seed_sqlite(path: Path, n: int, seed: int) -> float:
    """Write the rows with `executemany`, one transaction per chunk; returns the seconds."""
    store = open_store(path)
    store.upgrade()
    store.close()
    t0 = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for chunk in seed_rows(n, seed):
            write_sqlite(conn, _tables(chunk))
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - t0


def seed_postgres(url: str, n: int, seed: int) -> float:
    """Write the rows with `COPY`, one transaction per chunk, then VACUUM ANALYZE."""
    store = open_store(url)
    store.upgrade()
    store.close()
    t0 = time.perf_counter()
    with psycopg.connect(url) as conn:
        for chunk in seed_rows(n, seed):
            write_postgres(conn, _tables(chunk))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) runs, steps, events, run_logs")
    return time.perf_counter() - t0


def _w2(engine: Engine, n: int, first_seq: int, window: Callable[[], bool]) -> dict[str, Any]:
    """W2 as `run.py` measures it; also which samples fell inside `window()`."""
    latencies: list[float] = []
    inside: list[float] = []
    for seq in range(first_seq, first_seq + n):
        idle_between_runs()
        t0 = time.time()
        during = window()
        engine.send({"name": workload.W2_EVENT, "data": {"seq": seq}})
        t1 = workload.wait_started(seq)
        latencies.append(1000 * (t1 - t0))
        if during and window():
            inside.append(1000 * (t1 - t0))
    result: dict[str, Any] = {"runs": n, **percentiles(latencies)}
    if inside:
        result["while_pruning"] = {"runs": len(inside), **percentiles(inside)}
    return result


class _PruneThread(threading.Thread):
    """Prunes the seeded runs as the scheduler leader would, timing each batch."""

    def __init__(self, store: Store, rule: PruneRule) -> None:
        super().__init__(name="bench-prune", daemon=True)
        self.store = store
        self.progress = PrunePass(rule=rule)
        self.batches_ms: list[float] = []
        self.sizes: list[int] = []  # runs removed by each batch
        self.removed = PruneCounts()
        self.seconds = 0.0
        self.running = threading.Event()
        self.error: BaseException | None = None

    def _batch(self, took: float, removed: PruneCounts) -> None:
        self.batches_ms.append(1000 * took)
        self.sizes.append(removed.runs)

    def run(self) -> None:
        self.running.set()
        t0 = time.perf_counter()
        try:
            pacing = SCHEDULER.pacing(self.store)
            self.removed = prune(self.store, self.progress, pacing, on_batch=self._batch)
        except BaseException as exc:  # reported by the part
            self.error = exc
        finally:
            self.seconds = time.perf_counter() - t0
            self.running.clear()


def prune_under_w2(db: str | Path, n: int, latency_runs: int) -> dict[str, Any]:
    """Baseline W2, then W2 while every seeded run is pruned (see the module docstring)."""
    engine = Engine(workload.app, db=db, settings=QUIET).start()
    try:
        _w2(engine, 5, 0, lambda: False)  # warm-up
        baseline = _w2(engine, latency_runs, 5, lambda: False)
        now = time.time()
        rule = PruneRule(now=now, default=now - 30 * DAY, events_before=now - 30 * DAY)
        pruner = _PruneThread(engine.store, rule)
        pruner.start()
        pruner.running.wait(5)
        during = _w2(engine, latency_runs, 5 + latency_runs, pruner.running.is_set)
        still = pruner.is_alive()
        pruner.join()
    finally:
        engine.stop(grace_seconds=5)
    if pruner.error is not None:
        raise pruner.error
    batches = sorted(pruner.batches_ms)
    return {
        "seeded_runs": n,
        "baseline": baseline,
        "during_prune": during,
        "prune_outlasted_w2": still,
        "prune": {
            "seconds": round(pruner.seconds, 1),
            "removed": {
                "runs": pruner.removed.runs,
                "steps": pruner.removed.steps,
                "logs": pruner.removed.logs,
                "events": pruner.removed.events,
            },
            "runs_per_s": round(pruner.removed.runs / pruner.seconds, 0) if pruner.seconds else 0,
            "batches": len(batches),
            "batch_ms": {
                "p50": round(batches[len(batches) // 2], 1) if batches else 0,
                "p95": round(batches[int(len(batches) * 0.95)], 1) if batches else 0,
                "max": round(batches[-1], 1) if batches else 0,
            },
            "batch_runs_p50": sorted(pruner.sizes)[len(pruner.sizes) // 2] if pruner.sizes else 0,
            "pacing": (
                f"batches of up to {SCHEDULER.batch} runs sized to take "
                f"{1000 * SCHEDULER.pacing(engine.store).batch_seconds:g} ms, then a pause of "
                f"max({1000 * SCHEDULER.pause_seconds:g} ms, 3 x the batch)"
            ),
        },
    }


def steady_load(
    db: str | Path,
    size: Callable[[], int],
    count: Callable[[], int],
    seconds: float,
    rate: float,
    vacuum: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """W1 runs at `rate` per second for `seconds`, runs kept 1 minute; the size every 10 s.

    `size` and `count` (of runs) read the database on their own connections; `vacuum`, if
    given, runs every `VACUUM_EVERY_S`.
    """
    settings = replace(
        QUIET,
        retention=RetentionSettings(
            default=timedelta(minutes=1), every=timedelta(seconds=10), budget_seconds=2.0
        ),
    )
    engine = Engine(workload.app, db=db, settings=settings).start()
    samples: list[dict[str, float]] = []
    sent = 0
    try:
        t0 = time.monotonic()
        next_sample = next_vacuum = t0
        while (elapsed := time.monotonic() - t0) < seconds:
            due = int(elapsed * rate) - sent
            if due > 0:
                engine.send(
                    [{"name": workload.W1_EVENT, "data": {"i": sent + k}} for k in range(due)]
                )
                sent += due
            if time.monotonic() >= next_sample:
                samples.append(
                    {"t_s": round(elapsed, 1), "mb": round(size() / 2**20, 2), "runs": count()}
                )
                next_sample += 10.0
            if vacuum is not None and time.monotonic() >= next_vacuum + VACUUM_EVERY_S:
                vacuum()
                next_vacuum = time.monotonic()
            time.sleep(0.02)
        end = round(time.monotonic() - t0, 1)
        samples.append({"t_s": end, "mb": round(size() / 2**20, 2), "runs": count()})
    finally:
        engine.stop(grace_seconds=5)
    third = [s["mb"] for s in samples if s["t_s"] >= seconds * 2 / 3]
    middle = [s["mb"] for s in samples if seconds / 3 <= s["t_s"] < seconds * 2 / 3]
    return {
        "seconds": seconds,
        "runs_per_s": rate,
        "runs_sent": sent,
        "retention": "1m (pass every 10 s)",
        "size_mb_and_runs_every_10s": samples,
        "size_mb_middle_third_max": max(middle) if middle else None,
        "size_mb_last_third_max": max(third) if third else None,
    }


def retention_sqlite(n: int, latency_runs: int, seconds: float, rate: float) -> dict[str, Any]:
    """Both measurements on fresh SQLite files."""
    with scratch_dir() as tmp:
        db = tmp / "prune.db"
        progress(f"retention sqlite: seeding {n:,} ended runs")
        seeded = seed_sqlite(db, n, seed=1)
        size_before = db.stat().st_size
        progress("retention sqlite: W2 without, then with, a prune")
        pruning = prune_under_w2(db, n, latency_runs)
        pruning["seed_seconds"] = round(seeded, 1)
        pruning["file_mb_before"] = round(size_before / 2**20, 1)
    with scratch_dir() as tmp:
        db = tmp / "steady.db"
        progress(f"retention sqlite: steady load {rate:g} runs/s for {seconds:g} s")
        wal = db.with_name(db.name + "-wal")

        def size() -> int:
            return sum(p.stat().st_size for p in (db, wal) if p.exists())

        def count() -> int:
            conn = sqlite3.connect(db)
            try:
                return int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])
            finally:
                conn.close()

        steady = steady_load(db, size, count, seconds, rate)
        steady["measures"] = "SQLite file + WAL file"
    return {"prune_under_w2": pruning, "steady_load": steady}


def retention_postgres(
    admin_url: str, n: int, latency_runs: int, seconds: float, rate: float
) -> dict[str, Any]:
    """Both measurements on fresh PostgreSQL databases."""

    def pruning() -> dict[str, Any]:
        with bench_database(admin_url, "prune") as url:
            progress(f"retention postgres: seeding {n:,} ended runs")
            seeded = seed_postgres(url, n, seed=1)
            progress("retention postgres: W2 without, then with, a prune")
            result = prune_under_w2(url, n, latency_runs)
            result["seed_seconds"] = round(seeded, 1)
            return result

    def steady() -> dict[str, Any]:
        with bench_database(admin_url, "steady") as url:
            progress(f"retention postgres: steady load {rate:g} runs/s for {seconds:g} s")
            tables = ", ".join(f"'{t}'" for t in GROWING_TABLES)
            query = f"SELECT sum(pg_total_relation_size(c)) FROM unnest(ARRAY[{tables}]) c"

            def size() -> int:
                with psycopg.connect(url, autocommit=True) as conn:
                    row = conn.execute(query).fetchone()
                return int(row[0]) if row and row[0] is not None else 0

            def count() -> int:
                with psycopg.connect(url, autocommit=True) as conn:
                    row = conn.execute("SELECT count(*) FROM runs").fetchone()
                return int(row[0]) if row else 0

            def vacuum() -> None:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f"VACUUM {', '.join(GROWING_TABLES)}")

            with psycopg.connect(url, autocommit=True) as conn:
                row = conn.execute("SHOW autovacuum").fetchone()
            autovacuum = row is not None and str(row[0]) == "on"
            result = steady_load(url, size, count, seconds, rate, None if autovacuum else vacuum)
            result["measures"] = f"pg_total_relation_size of {', '.join(GROWING_TABLES)}"
            result["autovacuum"] = (
                "on" if autovacuum else f"off on this server: VACUUM every {VACUUM_EVERY_S:g} s"
            )
            return result

    return {
        "prune_under_w2": retrying(admin_url, "retention prune", pruning),
        "steady_load": retrying(admin_url, "retention steady", steady),
    }

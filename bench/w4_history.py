"""W4 "history scale": list and detail queries against a store holding 1,000,000 finished runs.

The history is written directly into the tables (SQLite: `executemany`, PostgreSQL: `COPY`),
after the store created its schema (all its indexes in place, so they grow as in production),
in creation order, from a seeded generator: both stores get the same rows.

Mix: 20 functions with Zipf-like popularity (the busiest has ≈ 28 % of the runs, the quietest
≈ 1.4 %); 90 % COMPLETED, 7 % FAILED, 3 % CANCELLED; `created_at` spread evenly over the last
90 days. A sample of runs (`step_fraction`, default 25 %) has its three steps in `steps`, and
each FAILED run of that sample one row in `attempts`. Events, logs and the function registry
are not loaded (no timed query reads them).
"""

from __future__ import annotations

import bisect
import json
import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from harness import percentiles, progress, scratch_dir
from postgres_parts import bench_database

from stepline.engine.operations import Operations
from stepline.store import open_store
from stepline.store.base import RunFilter, RunStatus, Store
from stepline.store.sqlite import SqliteStore

FUNCTIONS = [f"history-fn-{i:02d}" for i in range(20)]
_WEIGHTS = [1 / (i + 1) for i in range(len(FUNCTIONS))]
_CUMULATIVE = [sum(_WEIGHTS[: i + 1]) / sum(_WEIGHTS) for i in range(len(_WEIGHTS))]
STATUSES: list[RunStatus] = ["COMPLETED", "FAILED", "CANCELLED"]
DAYS = 90
CHUNK = 50_000
SAMPLE = 4_000
RUN_COLUMNS = (
    "id",
    "function_id",
    "status",
    "detail",
    "trigger_kind",
    "trigger_by",
    "event_id",
    "event_ids",
    "replay_of",
    "idempotency_key",
    "attempt",
    "failures",
    "output",
    "error",
    "created_at",
    "started_at",
    "ended_at",
    "timeout_seconds",
    "timeout_at",
    "progress_done",
    "progress_total",
    "progress_message",
    "counters",
)
STEP_COLUMNS = (
    "run_id",
    "hash",
    "id",
    "kind",
    "status",
    "position",
    "output",
    "error",
    "attempts",
    "started_at",
    "ended_at",
    "wake_at",
)
ATTEMPT_COLUMNS = (
    "run_id",
    "step_hash",
    "step_id",
    "attempt",
    "error",
    "started_at",
    "ended_at",
    "retry_at",
)
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ERROR = json.dumps({"name": "ValueError", "message": "upstream said no", "traceback": "..."})

Row = tuple[Any, ...]
TableRows = tuple[str, tuple[str, ...], list[Row]]  # a table, its columns, rows to write into them


def ulid_at(epoch: float, rng: random.Random) -> str:
    """A ULID for `epoch`: 48-bit milliseconds then 80 random bits, Crockford base32."""
    value = (int(epoch * 1000) << 80) | rng.getrandbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def completed_step(
    run_id: str, digest: str, step_id: str, position: int, output: str, started: float, ended: float
) -> Row:
    """A `steps` row (`STEP_COLUMNS`) for a step completed at its first attempt."""
    return (
        run_id,
        digest,
        step_id,
        "run",
        "completed",
        position,
        output,
        None,
        1,
        started,
        ended,
        None,
    )


@dataclass
class Chunk:
    runs: list[Row] = field(default_factory=list)
    steps: list[Row] = field(default_factory=list)
    attempts: list[Row] = field(default_factory=list)

    def tables(self) -> list[TableRows]:
        return [
            ("runs", RUN_COLUMNS, self.runs),
            ("steps", STEP_COLUMNS, self.steps),
            ("attempts", ATTEMPT_COLUMNS, self.attempts),
        ]


@dataclass
class Sample:
    """Runs remembered while loading, to aim the queries: (id, function, status)."""

    runs: list[tuple[str, str, RunStatus]] = field(default_factory=list)
    with_steps: list[str] = field(default_factory=list)


def generate(n: int, step_fraction: float, seed: int, sample: Sample) -> Iterator[Chunk]:
    """The history in creation order, `CHUNK` runs at a time."""
    rng = random.Random(seed)
    end = time.time() - 60.0
    start = end - DAYS * 86400.0
    spacing = (end - start) / n
    keep = SAMPLE / n
    chunk = Chunk()
    for i in range(n):
        created = start + (i + rng.random()) * spacing
        run_id = ulid_at(created, rng)
        event_id = ulid_at(created, rng)
        fn = FUNCTIONS[bisect.bisect_left(_CUMULATIVE, rng.random())]
        draw = rng.random()
        status: RunStatus = "COMPLETED" if draw < 0.90 else "FAILED" if draw < 0.97 else "CANCELLED"
        started = created + rng.uniform(0.001, 0.05)
        ended = started + rng.uniform(0.01, 5.0)
        failed = status == "FAILED"
        chunk.runs.append(
            (
                run_id,
                fn,
                status,
                None,
                "event",
                None,
                event_id,
                f'["{event_id}"]',
                None,
                None,
                2 if failed else 0,
                2 if failed else 0,
                '{"ok":true,"items":3}' if status == "COMPLETED" else None,
                ERROR if failed else None,
                created,
                started,
                ended,
                None,
                None,
                None,
                None,
                None,
                "{}",
            )
        )
        if rng.random() < keep:
            sample.runs.append((run_id, fn, status))
        if rng.random() < step_fraction:
            step_end = started
            for position in range(3):
                step_start = step_end
                step_end = step_start + 0.002
                digest = f"{rng.getrandbits(160):040x}"
                output = json.dumps({"run": i, "step": position + 1, "t": step_end})
                chunk.steps.append(
                    completed_step(
                        run_id, digest, f"s{position + 1}", position, output, step_start, step_end
                    )
                )
            if failed:
                chunk.attempts.append((run_id, "", None, 1, ERROR, started, ended, ended + 1.0))
            if len(sample.with_steps) < SAMPLE and rng.random() < 1.2 * SAMPLE / (
                n * step_fraction
            ):
                sample.with_steps.append(run_id)
        if len(chunk.runs) >= CHUNK:
            yield chunk
            chunk = Chunk()
    if chunk.runs:
        yield chunk


def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({', '.join(['?'] * len(columns))})"


def write_sqlite(conn: sqlite3.Connection, tables: Iterable[TableRows]) -> None:
    """Insert each table's rows with `executemany`, in one transaction."""
    conn.execute("BEGIN")
    for table, columns, rows in tables:
        conn.executemany(_insert_sql(table, columns), rows)
    conn.execute("COMMIT")


def write_postgres(conn: psycopg.Connection[Any], tables: Iterable[TableRows]) -> None:
    """`COPY` each table's rows, in one transaction."""
    with conn.cursor() as cur:
        for table, columns, rows in tables:
            names = ", ".join(f'"{c}"' for c in columns)
            with cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    conn.commit()


def load_sqlite(path: Path, n: int, step_fraction: float, seed: int) -> tuple[Sample, float]:
    store = SqliteStore(path)
    store.upgrade()
    store.close()
    sample = Sample()
    conn = sqlite3.connect(path, isolation_level=None)
    t0 = time.perf_counter()
    for chunk in generate(n, step_fraction, seed, sample):
        write_sqlite(conn, chunk.tables())
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return sample, time.perf_counter() - t0


def load_postgres(url: str, n: int, step_fraction: float, seed: int) -> tuple[Sample, float, float]:
    store = open_store(url)
    store.upgrade()
    store.close()
    sample = Sample()
    t0 = time.perf_counter()
    with psycopg.connect(url) as conn:
        for chunk in generate(n, step_fraction, seed, sample):
            write_postgres(conn, chunk.tables())
    loaded = time.perf_counter() - t0
    t1 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        # What autovacuum does to a table after a load like this: statistics, visibility map.
        conn.execute("VACUUM (ANALYZE) runs, steps, attempts")
    return sample, loaded, time.perf_counter() - t1


def _time(fn: Callable[[], object], reps: int, warmup: int = 20) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        samples.append(1000 * (time.perf_counter() - t0))
    return percentiles(samples)


def queries(
    store: Store, sample: Sample, pk_lookup: Callable[[str], object], reps: int, seed: int
) -> dict[str, Any]:
    """The timed queries; each over `reps` distinct random targets."""
    rng = random.Random(seed + 1)
    ops = Operations(store)
    result: dict[str, Any] = {}
    pages: list[int] = []

    def first_page() -> None:
        fn = rng.choice(FUNCTIONS)
        status = rng.choice(STATUSES)
        runs = store.list_runs(RunFilter(function_id=fn, status=status, limit=50))
        pages.append(len(runs))

    result["list_fn_status_first_page"] = {**_time(first_page, reps), "rows_min": min(pages)}
    pages.clear()

    def deep_page() -> None:
        run_id, fn, status = rng.choice(sample.runs)
        runs = store.list_runs(RunFilter(function_id=fn, status=status, before=run_id, limit=50))
        assert all(r.id < run_id for r in runs), "keyset cursor broken"
        pages.append(len(runs))

    deep = _time(deep_page, reps)
    result["list_fn_status_deep_page"] = {
        **deep,
        "cursor": "before=<a random run of that function and status>: median depth ≈ half",
        "rows_median": sorted(pages)[len(pages) // 2],
    }

    def any_status() -> None:
        store.list_runs(RunFilter(function_id=rng.choice(FUNCTIONS), limit=50))

    result["list_fn_any_status_first_page"] = _time(any_status, reps)

    def detail() -> None:
        run = ops.run_detail(rng.choice(sample.with_steps))
        assert len(run.steps) == 3, "target run has no steps"

    result["run_detail_with_steps"] = {**_time(detail, reps), "queries_per_call": 4}
    result["raw_pk_lookup"] = _time(lambda: pk_lookup(rng.choice(sample.runs)[0]), reps)
    return result


def w4_sqlite(n: int, step_fraction: float, reps: int, seed: int) -> dict[str, Any]:
    import sqlite3

    with scratch_dir() as tmp:
        path = tmp / "history.db"
        progress(f"W4 sqlite: loading {n:,} runs")
        sample, load_s = load_sqlite(path, n, step_fraction, seed)
        size = path.stat().st_size
        progress("W4 sqlite: queries")
        raw = sqlite3.connect(path, isolation_level=None)

        def pk(run_id: str) -> object:
            return raw.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()

        store = SqliteStore(path)
        try:
            timings = queries(store, sample, pk, reps, seed)
        finally:
            store.close()
            raw.close()
        counts = _counts_sqlite(path)
    return {
        "store": "SqliteStore (WAL, synchronous=NORMAL), no ANALYZE (Stepline never runs it)",
        "rows": counts,
        "load_seconds": round(load_s, 1),
        "load_method": "sqlite3 executemany, 50k runs per transaction, indexes in place",
        "db_size_mb": round(size / 2**20, 1),
        **timings,
    }


def _counts_sqlite(path: Path) -> dict[str, int]:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return {
            t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
            for t in ("runs", "steps", "attempts")
        }
    finally:
        conn.close()


def w4_postgres(
    admin_url: str, n: int, step_fraction: float, reps: int, seed: int
) -> dict[str, Any]:
    with bench_database(admin_url, "w4") as url:
        progress(f"W4 postgres: loading {n:,} runs")
        sample, load_s, vacuum_s = load_postgres(url, n, step_fraction, seed)
        progress("W4 postgres: queries")
        with psycopg.connect(url, autocommit=True) as raw:
            size_row = raw.execute("SELECT pg_database_size(current_database())").fetchone()
            counts = {
                t: int(raw.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
                for t in ("runs", "steps", "attempts")
            }

            def pk(run_id: str) -> object:
                return raw.execute("SELECT * FROM runs WHERE id = %s", (run_id,)).fetchone()

            store = open_store(url)
            try:
                timings = queries(store, sample, pk, reps, seed)
            finally:
                store.close()
    return {
        "store": "PostgresStore (pool_size 10, pool_pre_ping)",
        "rows": counts,
        "load_seconds": round(load_s, 1),
        "vacuum_analyze_seconds": round(vacuum_s, 1),
        "load_method": "psycopg COPY, 50k runs per transaction, indexes in place",
        "db_size_mb": round((size_row[0] if size_row else 0) / 2**20, 1),
        **timings,
    }

"""Stepline benchmark: raw storage limits, W1 throughput, W2 latency, W4 history scale, RSS.

    .venv/bin/python bench/run.py [--store sqlite|postgres|both] [--parts raw,w1,w2,w4]
        [--runs 2000] [--latency-runs 200] [--w4-runs 1000000] [--out bench/results/latest.json]

Prints one JSON document and writes it to `--out`. See bench/README.md for what each figure
means. Every SQLite database is a fresh file in a temporary directory; every PostgreSQL database
is created for one part and dropped after it; every child process is started by this script and
stopped by its PID.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import resource
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import workload
from harness import (
    BENCH,
    cpu_seconds_self,
    free_port,
    http_first_step_latencies,
    idle_between_runs,
    per_step,
    percentiles,
    progress,
    scratch_dir,
    stop_all,
    wait_for_health,
    wait_until,
)
from worker_procs import start_workers, worker_store_counts

import stepline
from stepline.engine.engine import Engine, EngineSettings
from stepline.engine.worker import WorkerSettings
from stepline.store import open_store

# Issue 13's goals: W1 on SQLite (the best of in-process and worker processes on one file),
# W1 on PostgreSQL at least the raw 4-connection commit rate measured beside it (the best of
# its worker-process counts), W2's p50 and p99, and CPU per step in-process.
TARGET_W1_STEPS_PER_S = 10_000.0
TARGET_W2_P50_MS = 2.0  # SQLite, in-process engine
TARGET_PG_W2_P50_MS = 5.0
TARGET_W2_P99_MS = 10.0  # both stores
TARGET_CPU_MS_PER_STEP = 0.15  # SQLite, in-process engine
TARGET_W4_P95_MS = 20.0
PEERS = {
    "dbos_steps_per_s": "120-180 (SQLite 121, PostgreSQL 181; peer-bench.md W1)",
    "huey_steps_per_s": "~620 (3 chained jobs, SqliteHuey WAL+FULL)",
    "raw_sqlite_wal_normal_tx_per_s": "~30,000 (peer-bench.md: 32,674)",
    "raw_postgres_tx_per_s": "c1 sync on ~1,077, c4 sync on ~4,164 (peer-bench.md)",
    "w2_p50_push_dispatched_ms": "4.5-7 (Celery 4.5, DBOS direct 5.8-7.0, procrastinate 7.1)",
}
BATCH = 100
PARTS = ("raw", "w1", "w2", "w4", "flow", "sdk", "retention", "scale")


class EngineProcess:
    """`engine_proc.py` in a child process; stopped by its PID (SIGTERM, then SIGKILL)."""

    def __init__(self, db: Path, slots: int, stats: Path, port: int | None = None) -> None:
        cmd = [sys.executable, str(BENCH / "engine_proc.py"), "--db", str(db)]
        cmd += ["--slots", str(slots), "--stats-out", str(stats)]
        if port is not None:
            cmd += ["--port", str(port)]
        self.stats_path = stats
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.ps = psutil.Process(self.proc.pid)

    def wait_ready_line(self, timeout_s: float = 60.0) -> None:
        assert self.proc.stdout is not None
        timer = threading.Timer(timeout_s, self._kill)
        timer.start()
        line = self.proc.stdout.readline()
        timer.cancel()
        if line.strip() != "READY":
            raise RuntimeError(f"engine process did not start (got {line!r})")

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def _kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)

    def stop(self) -> dict[str, Any]:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._kill()
                self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        try:
            return dict(json.loads(self.stats_path.read_text()))
        except (OSError, ValueError):
            return {}


# -- raw SQLite ----------------------------------------------------------------------------------


def raw_sqlite(synchronous: str, seconds: float) -> dict[str, Any]:
    """One-row INSERT + COMMIT per transaction on a fresh WAL file, for `seconds`."""
    with scratch_dir() as tmp:
        conn = sqlite3.connect(tmp / "raw.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
        payload = json.dumps({"run": 1, "step": 1, "t": time.time()})
        n = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            for _ in range(100):
                conn.execute("BEGIN")
                conn.execute("INSERT INTO t (payload) VALUES (?)", (payload,))
                conn.execute("COMMIT")
            n += 100
        elapsed = time.perf_counter() - start
        conn.close()
    return {
        "synchronous": synchronous,
        "tx": n,
        "seconds": round(elapsed, 3),
        "tx_per_s": round(n / elapsed, 1),
    }


# -- W1: throughput ------------------------------------------------------------------------------


def _w1_events(runs: int) -> list[list[dict[str, Any]]]:
    events = [{"name": workload.W1_EVENT, "data": {"i": i}} for i in range(runs)]
    return [events[i : i + BATCH] for i in range(0, len(events), BATCH)]


Batches = list[list[dict[str, Any]]]


def _count_completed(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM runs WHERE status = 'COMPLETED'").fetchone()[0])


def _drive_w1(
    db: Path,
    runs: int,
    send: Callable[[list[dict[str, Any]]], object],
    cpu: Callable[[], float],
    batches: Batches | None = None,
    checks: dict[str, str] | None = None,
    counts: Callable[[], tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """Send every event in batches, poll until all runs completed; time and CPU the lot.

    `batches` default to W1's events; `checks` name SQL counts read once all runs completed;
    `counts` reads the engine's (write transactions, statements) so far.
    """
    batches = batches or _w1_events(runs)
    poll = sqlite3.connect(db, isolation_level=None)
    psutil.cpu_percent(interval=None)
    cpu0 = cpu()
    counts0 = counts() if counts else None
    wall0 = time.time()
    t0 = time.perf_counter()
    for batch in batches:
        send(batch)
    sent_s = time.perf_counter() - t0
    wait_until(
        lambda: _count_completed(poll) >= runs,
        timeout_s=max(120.0, runs / 20),
        every_s=0.05,
        what="W1 runs",
    )
    polled_s = time.perf_counter() - t0
    cpu_s = cpu() - cpu0
    ran = per_step(counts0, counts(), 3 * runs) if counts and counts0 else {}
    busy = psutil.cpu_percent(interval=None)
    last_end = poll.execute("SELECT max(ended_at) FROM runs").fetchone()[0]
    steps = poll.execute("SELECT count(*) FROM steps WHERE status = 'completed'").fetchone()[0]
    counted = {name: poll.execute(query).fetchone()[0] for name, query in (checks or {}).items()}
    poll.close()
    elapsed = min(polled_s, float(last_end) - wall0)
    return {
        "runs": runs,
        "steps": int(steps),
        "send_seconds": round(sent_s, 3),
        "enqueue_only_events_per_s": round(runs / sent_s, 1),
        "seconds": round(elapsed, 3),
        "seconds_polled": round(polled_s, 3),
        "runs_per_s": round(runs / elapsed, 1),
        "steps_per_s": round(3 * runs / elapsed, 1),
        "cpu_ms_per_step": round(1000 * cpu_s / (3 * runs), 3),
        **ran,
        "system_cpu_busy_pct": busy,
        **counted,
    }


def w1_inprocess(
    runs: int,
    slots: int,
    app: stepline.App = workload.app,
    batches: Batches | None = None,
    checks: dict[str, str] | None = None,
) -> dict[str, Any]:
    """W1 with the engine in this process; events sent with `Engine.send`.

    `app`, `batches` and `checks` are for variants of W1 (the flow part); see `_drive_w1`.
    """
    with scratch_dir() as tmp:
        db = tmp / "w1.db"
        settings = EngineSettings(worker=WorkerSettings(slots=slots))
        engine = Engine(app, db=db, settings=settings).start()
        tally = engine.store.tally
        try:
            result = _drive_w1(
                db,
                runs,
                engine.send,
                cpu_seconds_self,
                batches,
                checks,
                counts=lambda: (tally.transactions, tally.statements),
            )
        finally:
            engine.stop(grace_seconds=5)
    return {"engine": "in-process", "sender": "Engine.send", "slots": slots, **result}


def w1_child(runs: int, slots: int) -> dict[str, Any]:
    """W1 with the engine in a child process; events sent with `Client.local` on the file."""
    with scratch_dir() as tmp:
        db = tmp / "w1.db"
        child = EngineProcess(db, slots, tmp / "stats.json")
        try:
            child.wait_ready_line()
            client = stepline.Client.local(db)
            result = _drive_w1(db, runs, client.send, child.cpu_seconds)
            client.close()
        finally:
            stats = child.stop()
    return {
        "engine": "child process",
        "sender": "Client.local (other process)",
        "slots": slots,
        **result,
        "cpu_ms_per_step_note": "engine process only",
        "engine_peak_rss_mb": round(stats.get("peak_rss_mb", 0.0), 1),
    }


def w1_processes(runs: int, workers: int, slots: int) -> dict[str, Any]:
    """W1 on `workers` `stepline worker` processes sharing one SQLite file; events sent with
    `Client.local` from this process."""
    with scratch_dir() as tmp:
        db = tmp / "w1.db"
        store = open_store(db)
        store.upgrade()
        store.close()
        children = start_workers(f"sqlite:///{db}", workers, slots, tmp, pin=True)
        try:
            client = stepline.Client.local(db)
            result = _drive_w1(
                db,
                runs,
                client.send,
                lambda: sum(child.cpu_seconds() for child in children),
                counts=lambda: worker_store_counts(children),
            )
            client.close()
        finally:
            stop_all(children)
    return {
        "engine": f"{workers} x `stepline worker --slots {slots} --cpu I` process(es) on one "
        "file, each on a CPU of its own (as `stepline dev --workers N`)",
        "sender": "Client.local (this process), batches of 100",
        "workers": workers,
        "slots": slots,
        **result,
        "cpu_ms_per_step_note": "worker processes only",
        "store_counts_note": "counted by the workers' stores (not the sender's intake)",
        "worker_peak_rss_mb": [child.peak_rss_mb for child in children],
    }


# -- W2: latency ---------------------------------------------------------------------------------


def w2_inprocess(n: int, warmup: int) -> dict[str, Any]:
    """Event accepted → first step started, engine in this process, `Engine.send`."""
    latencies: list[float] = []
    accepts: list[float] = []
    with scratch_dir() as tmp:
        engine = Engine(workload.app, db=tmp / "w2.db").start()
        try:
            for seq in range(warmup + n):
                idle_between_runs()
                t0 = time.time()
                engine.send({"name": workload.W2_EVENT, "data": {"seq": seq}})
                t_sent = time.time()
                t1 = workload.wait_started(seq)
                if seq >= warmup:
                    latencies.append(1000 * (t1 - t0))
                    accepts.append(1000 * (t_sent - t0))
        finally:
            engine.stop(grace_seconds=5)
    return {
        "engine": "in-process",
        "sender": "Engine.send",
        "warmup_runs_dropped": warmup,
        **percentiles(latencies),
        "send_call_p50_ms": round(statistics.median(accepts), 3),
    }


def w2_http(n: int, warmup: int) -> dict[str, Any]:
    """Same over HTTP: engine + server (`stepline dev` style) in a child, httpx POST /e/dev."""
    query = (
        "SELECT s.output FROM steps s JOIN runs r ON r.id = s.run_id "
        "WHERE r.event_id = ? AND s.status = 'completed'"
    )
    with scratch_dir() as tmp:
        db = tmp / "w2http.db"
        port = free_port()
        child = EngineProcess(db, 8, tmp / "stats.json", port=port)
        base = f"http://127.0.0.1:{port}"
        try:
            child.wait_ready_line()
            with httpx.Client(base_url=base, timeout=10) as http:
                wait_for_health(
                    http,
                    lambda: "server process exited" if child.proc.poll() is not None else None,
                )
                poll = sqlite3.connect(db, isolation_level=None)

                def first_output(event_id: str) -> Any:
                    found = poll.execute(query, (event_id,)).fetchone()
                    return None if found is None else found[0]

                latencies, accepts = http_first_step_latencies(
                    http, "dev", workload.W2_EVENT, first_output, n=n, warmup=warmup, every_s=0.002
                )
                poll.close()
        finally:
            stats = child.stop()
    return {
        "engine": "child process: create_app + uvicorn on 127.0.0.1 + Engine (stepline dev)",
        "sender": "httpx POST /e/dev (keep-alive)",
        "warmup_runs_dropped": warmup,
        **percentiles(latencies),
        "post_p50_ms": round(statistics.median(accepts), 3),
        "server_peak_rss_mb": round(stats.get("peak_rss_mb", 0.0), 1),
    }


# -- main ----------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpu_model": next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        ),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
    }


def _sqlite_w1(args: argparse.Namespace, skip: set[str]) -> dict[str, Any]:
    """W1 in-process (8 and 16 slots), in a child process, and on N worker processes."""
    w1: dict[str, Any] = {}
    progress(f"W1 sqlite in-process slots=8, {args.runs} runs")
    w1["inprocess_slots8"] = w1_inprocess(args.runs, 8)
    if "w1-16" not in skip:
        progress("W1 sqlite in-process slots=16")
        w1["inprocess_slots16"] = w1_inprocess(args.runs, 16)
    if "w1-child" not in skip:
        progress("W1 sqlite child process slots=8")
        w1["childprocess_slots8"] = w1_child(args.runs, 8)
    for n in [int(n) for n in args.sqlite_workers.split(",") if n]:
        progress(f"W1 sqlite {n} worker process(es) slots=8")
        w1[f"workers{n}"] = w1_processes(args.runs, n, 8)
    return w1


def _sqlite_w1_scale(counts: str) -> dict[str, Any]:
    """W1 in-process at several run counts: the cost per step should not grow with N."""
    scale: dict[str, Any] = {}
    for n in [int(n) for n in counts.split(",") if n]:
        progress(f"W1 sqlite in-process slots=8, {n} runs (scale)")
        result = w1_inprocess(n, 8)
        scale[f"runs{n}"] = {
            key: result[key]
            for key in (
                "runs",
                "steps_per_s",
                "cpu_ms_per_step",
                "store_transactions_per_step",
                "store_statements_per_step",
            )
        }
    return scale


def run_sqlite(args: argparse.Namespace, parts: set[str], skip: set[str]) -> dict[str, Any]:
    """The SQLite parts (W4 apart), with ratios to the raw WAL-NORMAL commit rate."""
    report: dict[str, Any] = {}
    raw_needed = bool(parts & {"raw", "w1", "w2"})
    raw_before: dict[str, Any] = {}
    raw_full: dict[str, Any] = {}
    if raw_needed:
        progress("raw sqlite")
        raw_before = raw_sqlite("NORMAL", args.raw_seconds)
        raw_full = raw_sqlite("FULL", args.raw_seconds)
    w1: dict[str, Any] = {}
    if "w1" in parts:
        w1 = _sqlite_w1(args, skip)
        report["W1"] = w1
        if "w1-scale" not in skip:
            report["W1_scale"] = _sqlite_w1_scale(args.w1_scale)
    w2: dict[str, Any] = {}
    if "w2" in parts:
        progress(f"W2 sqlite in-process, {args.latency_runs} runs")
        w2["inprocess"] = w2_inprocess(args.latency_runs, warmup=5)
        if "w2-http" not in skip:
            progress(f"W2 sqlite HTTP, {args.latency_runs} runs")
            w2["http"] = w2_http(args.latency_runs, warmup=5)
        report["W2"] = w2
    if raw_needed:
        progress("raw sqlite (again)")
        raw_after = raw_sqlite("NORMAL", args.raw_seconds)
        limit = (raw_before["tx_per_s"] + raw_after["tx_per_s"]) / 2
        commit_ms = 1000 / limit
        for result in w1.values():
            result["steps_per_raw_tx"] = round(result["steps_per_s"] / limit, 4)
        for result in w2.values():
            result["p50_over_one_raw_commit"] = round(result["p50_ms"] / commit_ms, 1)
        report["raw_sqlite"] = {
            "wal_normal_before": raw_before,
            "wal_normal_after": raw_after,
            "wal_normal_tx_per_s_used": round(limit, 1),
            "wal_full": raw_full,
        }
    return report


def _targets(report: dict[str, Any]) -> dict[str, Any]:
    """Each target beside the figure it judges (absent parts are left out)."""
    targets: dict[str, Any] = {}

    def judge(name: str, value: float, target: float, *, at_least: bool) -> None:
        met = value >= target if at_least else value <= target
        targets[name] = {"value": value, "target": target, "met": met}

    sq, pg = report.get("sqlite", {}), report.get("postgres", {})
    sq_w1 = {k: v for k, v in sq.get("W1", {}).items() if k == "inprocess_slots8" or "workers" in k}
    if sq_w1:
        best = max(sq_w1, key=lambda k: sq_w1[k]["steps_per_s"])
        value = sq_w1[best]["steps_per_s"]
        judge(f"sqlite_W1_steps_per_s_{best}", value, TARGET_W1_STEPS_PER_S, at_least=True)
    if "inprocess_slots8" in sq.get("W1", {}):
        value = sq["W1"]["inprocess_slots8"]["cpu_ms_per_step"]
        judge("sqlite_W1_cpu_ms_per_step_inprocess", value, TARGET_CPU_MS_PER_STEP, at_least=False)
    pg_w1 = {k: v for k, v in pg.get("W1", {}).items() if k.startswith("workers")}
    raw_c4 = pg.get("raw_postgres_used", {}).get("c4_sync_on_tx_per_s")
    if pg_w1 and raw_c4:
        best = max(pg_w1, key=lambda k: pg_w1[k]["steps_per_s"])
        judge(f"postgres_W1_steps_per_s_{best}", pg_w1[best]["steps_per_s"], raw_c4, at_least=True)
    for store, w2, p50 in (
        ("sqlite", sq.get("W2", {}), TARGET_W2_P50_MS),
        ("postgres", pg.get("W2", {}), TARGET_PG_W2_P50_MS),
    ):
        for kind in ("inprocess", "http"):
            if kind in w2:
                judge(f"{store}_W2_p50_ms_{kind}", w2[kind]["p50_ms"], p50, at_least=False)
                judge(
                    f"{store}_W2_p99_ms_{kind}",
                    w2[kind]["p99_ms"],
                    TARGET_W2_P99_MS,
                    at_least=False,
                )
    for store in ("sqlite", "postgres"):
        w4 = report.get(store, {}).get("W4", {})
        for query, figures in w4.items():
            if isinstance(figures, dict) and "p95_ms" in figures and query != "raw_pk_lookup":
                judge(
                    f"{store}_W4_{query}_p95_ms",
                    figures["p95_ms"],
                    TARGET_W4_P95_MS,
                    at_least=False,
                )
    return targets


def _peak_rss(report: dict[str, Any]) -> dict[str, Any]:
    rss: dict[str, Any] = {
        "bench_process_with_inprocess_engines": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        )
    }
    sq, pg = report.get("sqlite", {}), report.get("postgres", {})
    for key, result in sq.get("W1", {}).items():
        if "engine_peak_rss_mb" in result:
            rss[f"sqlite.W1.{key}.engine"] = result["engine_peak_rss_mb"]
    if "http" in sq.get("W2", {}):
        rss["sqlite.W2.http.engine_with_server"] = sq["W2"]["http"]["server_peak_rss_mb"]
    for key, result in pg.get("W1", {}).items():
        rss[f"postgres.W1.{key}.workers"] = result["worker_peak_rss_mb"]
    if "http" in pg.get("W2", {}):
        rss["postgres.W2.http.server"] = pg["W2"]["http"]["server_peak_rss_mb"]
        rss["postgres.W2.http.worker"] = pg["W2"]["http"]["worker_peak_rss_mb"]
    return rss


Attempt = Callable[[str, Callable[[], dict[str, Any]]], dict[str, Any]]
StorePart = Callable[..., dict[str, Any]]


def run_per_store(
    args: argparse.Namespace,
    parts: set[str],
    stores: list[str],
    report: dict[str, Any],
    attempt: Attempt,
) -> None:
    """The sdk, retention and scale parts (sdk_parts.py, retention_part.py, scale_parts.py) on
    each store, if selected."""
    chosen: list[tuple[str, StorePart, StorePart, tuple[Any, ...]]] = []
    if "sdk" in parts:
        from sdk_parts import sdk_postgres, sdk_sqlite

        sdk = (args.sdk_runs, args.sdk_latency_runs, args.sdk_rounds, args.raw_seconds)
        chosen.append(("sdk", sdk_sqlite, sdk_postgres, sdk))
    if "retention" in parts:
        from retention_part import retention_postgres, retention_sqlite

        kept = (args.retention_runs, args.latency_runs, args.retention_seconds, args.retention_rate)
        chosen.append(("retention", retention_sqlite, retention_postgres, kept))
    if "scale" in parts:
        from scale_parts import scale_postgres, scale_sqlite

        scale = (args.intake_clients, args.intake_seconds, args.sse_streams, args.storm_runs)
        chosen.append(("scale", scale_sqlite, scale_postgres, scale))
    for key, on_sqlite, on_postgres, params in chosen:
        if "sqlite" in stores:
            part = functools.partial(on_sqlite, *params)
            report["sqlite"][key] = attempt(f"sqlite.{key}", part)
        if "postgres" in stores:
            part = functools.partial(on_postgres, args.pg_url, *params)
            report["postgres"][key] = attempt(f"postgres.{key}", part)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help="comma-separated: raw,w1,w2,w4,flow,sdk,retention,scale (default all)",
    )
    parser.add_argument("--runs", type=int, default=2000, help="W1 runs (3 steps each)")
    parser.add_argument("--latency-runs", type=int, default=200, help="W2 runs")
    parser.add_argument("--raw-seconds", type=float, default=3.0)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("STEPLINE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test"),
        help="admin database; bench databases are created and dropped next to it",
    )
    parser.add_argument("--pg-workers", default="1,2,4", help="W1 worker process counts")
    parser.add_argument("--intake-clients", type=int, default=16, help="concurrent senders")
    parser.add_argument("--intake-seconds", type=float, default=5.0)
    parser.add_argument("--sse-streams", type=int, default=200, help="open during intake")
    parser.add_argument("--storm-runs", type=int, default=10_000, help="wake-up storm runs")
    parser.add_argument(
        "--w1-scale", default="500,2000,8000", help="W1 run counts for the in-process scale check"
    )
    parser.add_argument(
        "--sqlite-workers", default="1,2", help="W1 worker process counts on one SQLite file"
    )
    parser.add_argument("--w4-runs", type=int, default=1_000_000)
    parser.add_argument("--w4-step-fraction", type=float, default=0.3)
    parser.add_argument("--w4-queries", type=int, default=300, help="timed queries per kind")
    parser.add_argument("--flow-rounds", type=int, default=5, help="rounds of the flow variants")
    parser.add_argument(
        "--flow-listeners", default="0,100,500", help="listening runs in the cancel_on probe"
    )
    parser.add_argument(
        "--flow-events", type=int, default=50, help="events of each kind in the cancel_on probe"
    )
    parser.add_argument("--flow-pg-workers", type=int, default=1, help="flow W1 worker processes")
    parser.add_argument("--sdk-runs", type=int, default=300, help="sdk part: W1 runs")
    parser.add_argument("--sdk-latency-runs", type=int, default=30, help="sdk part: W2 runs/round")
    parser.add_argument("--sdk-rounds", type=int, default=3, help="sdk part: rounds")
    parser.add_argument(
        "--retention-runs", type=int, default=100_000, help="retention part: old runs seeded"
    )
    parser.add_argument(
        "--retention-seconds", type=float, default=240, help="retention part: steady load length"
    )
    parser.add_argument(
        "--retention-rate", type=float, default=40, help="retention part: steady runs per second"
    )
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "latest.json")
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated SQLite variants to skip: w1-16,w1-child,w1-scale,w2-http",
    )
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    parts = set(filter(None, args.parts.split(",")))
    if unknown := parts - set(PARTS):
        parser.error(f"unknown parts: {sorted(unknown)}")
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]

    report: dict[str, Any] = {"machine": machine(), "parts": sorted(parts), "stores": stores}
    errors: dict[str, str] = {}

    def attempt(name: str, part: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        # A failing part is reported (and the others still run), not fatal to the document.
        try:
            return part()
        except Exception as exc:
            progress(f"{name} FAILED: {exc!r}")
            errors[name] = repr(exc)
            return {}

    listeners = [int(n) for n in args.flow_listeners.split(",") if n]
    flow = (args.runs, args.flow_rounds, args.raw_seconds)
    if "sqlite" in stores:
        report["sqlite"] = attempt("sqlite", lambda: run_sqlite(args, parts, skip))
        if "flow" in parts:
            from flow_parts import flow_sqlite

            report["sqlite"]["flow"] = attempt(
                "sqlite.flow", lambda: flow_sqlite(*flow, listeners, args.flow_events)
            )
    if "postgres" in stores:
        from postgres_parts import run_postgres

        counts = [int(n) for n in args.pg_workers.split(",") if n]
        report["postgres"] = attempt(
            "postgres",
            lambda: run_postgres(
                args.pg_url, parts, args.runs, args.latency_runs, args.raw_seconds, counts
            ),
        )
        if "flow" in parts:
            from flow_parts import flow_postgres

            report["postgres"]["flow"] = attempt(
                "postgres.flow",
                lambda: flow_postgres(
                    args.pg_url, *flow, args.flow_pg_workers, listeners, args.flow_events
                ),
            )
    run_per_store(args, parts, stores, report, attempt)
    if "w4" in parts:
        from w4_history import w4_postgres, w4_sqlite

        w4 = (args.w4_runs, args.w4_step_fraction, args.w4_queries, args.seed)
        if "sqlite" in stores:
            report["sqlite"]["W4"] = attempt("sqlite.W4", lambda: w4_sqlite(*w4))
        if "postgres" in stores:
            from postgres_parts import retrying

            report["postgres"]["W4"] = attempt(
                "postgres.W4",
                lambda: retrying(args.pg_url, "W4", lambda: w4_postgres(args.pg_url, *w4)),
            )
    report["machine"]["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    if errors:
        report["errors"] = errors
    report["peak_rss_mb"] = _peak_rss(report)
    report["target"] = _targets(report)
    report["peers_same_machine"] = PEERS
    text = json.dumps(report, indent=2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

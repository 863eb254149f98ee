"""PostgreSQL parts: raw commit limit, W1 with worker processes, W2 in-process and over HTTP.

Every database is created by this module as `stepline_bench_<random>_<part>` next to the
admin database of `--pg-url`, and dropped (WITH (FORCE)) when the part ends. Worker and server
processes are `stepline worker` / `stepline server --insecure` children, stopped by PID.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psutil
import psycopg
import workload
from harness import (
    STEPLINE,
    Child,
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
from psycopg import conninfo, sql
from worker_procs import W1_APP, start_workers, worker_store_counts

import stepline
from stepline.engine.engine import Engine
from stepline.store import open_store

BATCH = 100
_SESSION = secrets.token_hex(3)


# -- databases -------------------------------------------------------------------------------


def _with_dbname(url: str, dbname: str) -> str:
    params = conninfo.conninfo_to_dict(url)
    params["dbname"] = dbname
    host = params.get("host", "127.0.0.1")
    port = params.get("port", 5432)
    user = params.get("user", "postgres")
    password = params.get("password")
    auth = f"{user}:{password}" if password else f"{user}"
    return f"postgresql://{auth}@{host}:{port}/{dbname}"


@contextmanager
def bench_database(admin_url: str, part: str) -> Iterator[str]:
    """A fresh, empty database for one part; dropped (even if in use) when the block ends."""
    name = f"stepline_bench_{_SESSION}_{part}".lower()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_dbname(admin_url, name)
    finally:
        _drop(admin_url, name)


def _drop(admin_url: str, name: str, patience_s: float = 120.0) -> None:
    """Drop a bench database, retrying while the server is unreachable (e.g. restarting)."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2.0)


def server_info(admin_url: str) -> dict[str, Any]:
    """Version and the settings that bound commit rates."""
    with psycopg.connect(admin_url, autocommit=True) as conn:

        def show(setting: str) -> str:
            row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(setting))).fetchone()
            return str(row[0]) if row else "?"

        version = conn.execute("SELECT version()").fetchone()
        return {
            "version": str(version[0]).split(" on ")[0] if version else "?",
            **{
                s: show(s)
                for s in (
                    "synchronous_commit",
                    "fsync",
                    "wal_sync_method",
                    "shared_buffers",
                    "max_connections",
                    "commit_delay",
                )
            },
            "psycopg": psycopg.__version__,
        }


def _upgrade(url: str) -> None:
    store = open_store(url)
    try:
        store.upgrade()
    finally:
        store.close()


def _db_counters(url: str) -> dict[str, int]:
    """Commits in this database, and WAL flushes cluster-wide (pg_stat_wal)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit, (SELECT wal_sync FROM pg_stat_wal) "
            "FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return {"commits": int(row[0]), "wal_syncs": int(row[1])}


def backend_cpu(dbname: str) -> dict[str, float]:
    """CPU seconds so far of this database's backends (by PID) and of the shared processes.

    Backends are recognised by their process title (`postgres: ... <user> <db> <client> ...`);
    the shared ones (walwriter, checkpointer, ...) are summed under "shared".
    """
    seconds: dict[str, float] = {}
    shared = 0.0
    for proc in psutil.process_iter(["name", "cmdline"]):
        title = " ".join(proc.info["cmdline"] or [])
        if not title.startswith("postgres:"):
            continue
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        cpu = float(times.user + times.system)
        if f" {dbname} " in title:
            seconds[str(proc.pid)] = cpu
        elif not any(c.isdigit() for c in title.split(":")[-1]):  # no client address
            shared += cpu
    seconds["shared"] = shared
    return seconds


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> tuple[float, float]:
    """(backends, shared processes) CPU seconds between two `backend_cpu` readings."""
    backends = sum(v - before.get(k, 0.0) for k, v in after.items() if k != "shared")
    return backends, after["shared"] - before["shared"]


# -- raw limit -------------------------------------------------------------------------------


def _raw_loop(url: str, sync: bool, start_at: float, seconds: float, out: Any) -> None:
    """One connection: INSERT one row + COMMIT until `seconds` have passed (child process)."""
    payload = json.dumps({"run": 1, "step": 1, "t": time.time()})
    with psycopg.connect(url) as conn:
        if not sync:
            conn.execute("SET synchronous_commit = off")
        conn.commit()
        time.sleep(max(0.0, start_at - time.time()))
        n = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            for _ in range(20):
                conn.execute("INSERT INTO raw_t (payload) VALUES (%s)", (payload,))
                conn.commit()
            n += 20
        out.put((n, time.perf_counter() - start))


def raw_postgres(url: str, connections: int, sync: bool, seconds: float) -> dict[str, Any]:
    """One-row INSERT + COMMIT per transaction from `connections` processes, for `seconds`."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS raw_t (id bigserial PRIMARY KEY, payload text)")
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 1.5  # after every process has connected
    procs = [
        ctx.Process(target=_raw_loop, args=(url, sync, start_at, seconds, out), daemon=True)
        for _ in range(connections)
    ]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=seconds + 60) for _ in procs]
    for proc in procs:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
    tx = sum(n for n, _ in results)
    elapsed = max(s for _, s in results)
    return {
        "connections": connections,
        "synchronous_commit": "on" if sync else "off",
        "tx": tx,
        "seconds": round(elapsed, 3),
        "tx_per_s": round(tx / elapsed, 1),
    }


def raw_suite(admin_url: str, seconds: float, *, reference: bool) -> dict[str, Any]:
    """sync-on 1 and 4 connections (and, for reference, sync-off) on a fresh database."""
    with bench_database(admin_url, "raw") as url:
        result = {
            "c1_sync_on": raw_postgres(url, 1, True, seconds),
            "c4_sync_on": raw_postgres(url, 4, True, seconds),
        }
        if reference:
            result["c1_sync_off"] = raw_postgres(url, 1, False, seconds)
            result["c4_sync_off"] = raw_postgres(url, 4, False, seconds)
    return result


# -- W1: worker processes --------------------------------------------------------------------


def _count_completed(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM runs WHERE status = 'COMPLETED'").fetchone()
    return int(row[0]) if row else 0


def w1_postgres(
    admin_url: str,
    runs: int,
    workers: int,
    slots: int,
    app: str = W1_APP,
    batches: list[list[dict[str, Any]]] | None = None,
    checks: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`runs` W1 runs on `workers` `stepline worker` processes; events via Client.local.

    `app` (`file.py:attr`), `batches` and `checks` (SQL counts read once all runs completed)
    are for variants of W1 (the flow part).
    """
    if batches is None:
        events = [{"name": workload.W1_EVENT, "data": {"i": i}} for i in range(runs)]
        batches = [events[i : i + BATCH] for i in range(0, runs, BATCH)]
    with bench_database(admin_url, f"w1_{workers}") as url, scratch_dir() as tmp:
        _upgrade(url)
        children = start_workers(url, workers, slots, tmp, app)
        try:
            client = stepline.Client.local(url)
            poll = psycopg.connect(url, autocommit=True)
            before = _db_counters(url)
            counts0 = worker_store_counts(children)
            cpu0 = [c.cpu_seconds() for c in children]
            dbname = url.rsplit("/", 1)[1]
            pg_cpu0 = backend_cpu(dbname)
            client_cpu0 = cpu_seconds_self()
            psutil.cpu_percent(interval=None)
            wall0 = time.time()
            t0 = time.perf_counter()
            for batch in batches:
                client.send(batch)
            sent_s = time.perf_counter() - t0
            wait_until(
                lambda: _count_completed(poll) >= runs,
                timeout_s=max(120.0, runs / 10),
                every_s=0.05,
                what="W1 runs",
            )
            polled_s = time.perf_counter() - t0
            busy = psutil.cpu_percent(interval=None)
            ran = per_step(counts0, worker_store_counts(children), 3 * runs)
            pg_backends, pg_shared = cpu_delta(pg_cpu0, backend_cpu(dbname))
            worker_cpu = sum(c.cpu_seconds() - c0 for c, c0 in zip(children, cpu0, strict=True))
            client_cpu = cpu_seconds_self() - client_cpu0
            row = poll.execute(
                "SELECT max(ended_at), (SELECT count(*) FROM steps WHERE status = 'completed') "
                "FROM runs"
            ).fetchone()
            assert row is not None
            last_end, steps = float(row[0]), int(row[1])
            counted = {}
            for name, query in (checks or {}).items():
                found = poll.execute(query).fetchone()
                counted[name] = int(found[0]) if found else 0
            poll.close()
            client.close()
        finally:
            stop_all(children)
        after = _db_counters(url)  # after the workers exited: their statistics are flushed
    elapsed = min(polled_s, last_end - wall0)
    n_steps = 3 * runs
    return {
        "engine": f"{workers} x `stepline worker --slots {slots}` process(es)",
        "sender": "Client.local(URL) in the bench process, batches of 100",
        "workers": workers,
        "slots": slots,
        "runs": runs,
        "steps": steps,
        "send_seconds": round(sent_s, 3),
        "enqueue_only_events_per_s": round(runs / sent_s, 1),
        "seconds": round(elapsed, 3),
        "seconds_polled": round(polled_s, 3),
        "runs_per_s": round(runs / elapsed, 1),
        "steps_per_s": round(n_steps / elapsed, 1),
        "worker_cpu_ms_per_step": round(1000 * worker_cpu / n_steps, 3),
        "sender_cpu_ms_per_step": round(1000 * client_cpu / n_steps, 3),
        "postgres_backend_cpu_ms_per_step": round(1000 * pg_backends / n_steps, 3),
        "postgres_shared_cpu_ms_per_step": round(1000 * pg_shared / n_steps, 3),
        "transactions_per_step": round((after["commits"] - before["commits"]) / n_steps, 2),
        "wal_flushes_per_step": round((after["wal_syncs"] - before["wal_syncs"]) / n_steps, 2),
        **ran,
        "store_counts_note": "counted by the workers' stores (not the sender's intake)",
        "system_cpu_busy_pct": busy,
        "worker_peak_rss_mb": [c.peak_rss_mb for c in children],
        **counted,
    }


# -- W2: latency -----------------------------------------------------------------------------


def w2_postgres_inprocess(admin_url: str, n: int, warmup: int) -> dict[str, Any]:
    """Event accepted → first step started; engine in this process on PostgreSQL."""
    latencies: list[float] = []
    accepts: list[float] = []
    with bench_database(admin_url, "w2in") as url:
        engine = Engine(workload.app, db=url).start()
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
        "engine": "in-process Engine on PostgreSQL (worker woken in-process)",
        "sender": "Engine.send",
        "warmup_runs_dropped": warmup,
        **percentiles(latencies),
        "send_call_p50_ms": round(statistics.median(accepts), 3),
    }


def w2_postgres_http(
    admin_url: str, n: int, warmup: int, poll_every_s: float = 0.002
) -> dict[str, Any]:
    """Same over HTTP: `stepline server --insecure` + one `stepline worker` (LISTEN/NOTIFY)."""
    query = (
        "SELECT s.output FROM steps s JOIN runs r ON r.id = s.run_id "
        "WHERE r.event_id = %s AND s.status = 'completed'"
    )
    with bench_database(admin_url, "w2http") as url, scratch_dir() as tmp:
        _upgrade(url)
        port = free_port()
        workers = start_workers(url, 1, 8, tmp)
        server = Child(
            [str(STEPLINE), "server", "--db", url, "--insecure", "--port", str(port)],
            tmp / "server.log",
        )
        children = [*workers, server]
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                wait_for_health(
                    http,
                    lambda: (
                        f"server exited: {server.log.read_text()[-2000:]}"
                        if server.proc.poll() is not None
                        else None
                    ),
                )
                poll = psycopg.connect(url, autocommit=True)

                def first_output(event_id: str) -> Any:
                    found = poll.execute(query, (event_id,)).fetchone()
                    return None if found is None else found[0]

                latencies, accepts = http_first_step_latencies(
                    http,
                    "bench",
                    workload.W2_EVENT,
                    first_output,
                    n=n,
                    warmup=warmup,
                    every_s=poll_every_s,
                )
                poll.close()
        finally:
            stop_all(children)
    return {
        "engine": "`stepline server --insecure` + 1 x `stepline worker --slots 8` (LISTEN/NOTIFY)",
        "sender": "httpx POST /e/bench (keep-alive)",
        "warmup_runs_dropped": warmup,
        **percentiles(latencies),
        "post_p50_ms": round(statistics.median(accepts), 3),
        "completion_poll_ms": poll_every_s * 1000,
        "server_peak_rss_mb": server.peak_rss_mb,
        "worker_peak_rss_mb": workers[0].peak_rss_mb,
    }


def postmaster_start(admin_url: str) -> str:
    """When the server last started (to tell whether it restarted during a part)."""
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SELECT pg_postmaster_start_time()::text").fetchone()
    return str(row[0]) if row else "?"


def _wait_for_server(admin_url: str, patience_s: float = 120.0) -> None:
    deadline = time.monotonic() + patience_s
    while True:
        try:
            postmaster_start(admin_url)
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2.0)


def retrying(admin_url: str, name: str, part: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a part; if the server restarted under it (others share it), run it again (3 tries).

    The result records how many tries it took; figures come from the last, clean try only.
    """
    for attempt in range(1, 4):
        started = postmaster_start(admin_url)
        try:
            result = part()
        except Exception as exc:
            _wait_for_server(admin_url)
            if postmaster_start(admin_url) == started or attempt == 3:
                raise
            progress(f"{name}: PostgreSQL restarted underneath ({exc!r:.80}); again")
            continue
        if postmaster_start(admin_url) != started and attempt < 3:
            progress(f"{name}: PostgreSQL restarted during the part; again")
            continue
        result["tries"] = attempt
        return result
    raise AssertionError("unreachable")


def run_postgres(
    admin_url: str,
    parts: set[str],
    runs: int,
    latency_runs: int,
    raw_seconds: float,
    worker_counts: list[int],
) -> dict[str, Any]:
    """Every selected PostgreSQL part (W4 lives in `w4_history`), with ratios to the raw limit."""
    report: dict[str, Any] = {"server": server_info(admin_url)}
    need_raw = bool(parts & {"raw", "w1", "w2"})
    if need_raw:
        progress("raw postgres (sync on 1/4 conns, sync off for reference)")
        report["raw_postgres_before"] = retrying(
            admin_url, "raw", lambda: raw_suite(admin_url, raw_seconds, reference=True)
        )
    if "w1" in parts:
        w1: dict[str, Any] = {}
        for n in worker_counts:
            progress(f"W1 postgres, {n} worker process(es), {runs} runs")
            w1[f"workers{n}"] = retrying(
                admin_url, f"W1 x{n}", functools.partial(w1_postgres, admin_url, runs, n, 8)
            )
        report["W1"] = w1
    if "w2" in parts:
        progress(f"W2 postgres in-process, {latency_runs} runs")
        w2 = {
            "inprocess": retrying(
                admin_url, "W2", lambda: w2_postgres_inprocess(admin_url, latency_runs, warmup=5)
            )
        }
        progress(f"W2 postgres HTTP (server + worker), {latency_runs} runs")
        w2["http"] = retrying(
            admin_url, "W2 http", lambda: w2_postgres_http(admin_url, latency_runs, warmup=5)
        )
        report["W2"] = w2
    if need_raw:
        progress("raw postgres (again, sync on)")
        report["raw_postgres_after"] = retrying(
            admin_url, "raw", lambda: raw_suite(admin_url, raw_seconds, reference=False)
        )
        c1 = statistics.fmean(
            report[k]["c1_sync_on"]["tx_per_s"]
            for k in ("raw_postgres_before", "raw_postgres_after")
        )
        c4 = statistics.fmean(
            report[k]["c4_sync_on"]["tx_per_s"]
            for k in ("raw_postgres_before", "raw_postgres_after")
        )
        report["raw_postgres_used"] = {
            "c1_sync_on_tx_per_s": round(c1, 1),
            "c4_sync_on_tx_per_s": round(c4, 1),
        }
        for result in report.get("W1", {}).values():
            result["steps_per_raw_tx_c1"] = round(result["steps_per_s"] / c1, 3)
            result["steps_per_raw_tx_c4"] = round(result["steps_per_s"] / c4, 3)
        for result in report.get("W2", {}).values():
            result["p50_over_one_raw_commit_c1"] = round(result["p50_ms"] / (1000 / c1), 1)
    return report

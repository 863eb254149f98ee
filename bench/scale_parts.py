"""Intake, wake-up storms and live streams at scale (issue 13, item 6).

- Intake: `clients` threads each POST single events to `stepline server` (one `stepline
  worker` executing W1 beside it) for `seconds`; events/s and latency, next to the raw
  commit rate the caller measured. With `streams` SSE clients open on `/v1/runs/stream` as
  well, and the p95 of `GET /v1/runs` during the load.
- Wake-up storm: `runs` runs sleep until the same instant; how long after it the last one
  completed, and the rate they drained at (compare with W1).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import workload
from harness import (
    STEPLINE,
    Child,
    free_port,
    percentiles,
    progress,
    scratch_dir,
    stop_all,
    wait_for_health,
    wait_until,
)
from worker_procs import start_workers

from stepline.engine.engine import Engine
from stepline.store import open_store


def _server(url: str, logs: Path) -> tuple[Child, str]:
    port = free_port()
    child = Child(
        [str(STEPLINE), "server", "--insecure", "--host", "127.0.0.1", "--port", str(port),
         "--db", url],
        logs / "server.log",
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=5) as http:
        wait_for_health(http, lambda: None if child.proc.poll() is None else child.log.read_text())
    return child, base


def _stream(base: str, stop: threading.Event, opened: threading.Semaphore) -> None:
    with httpx.stream("GET", f"{base}/v1/runs/stream", timeout=None) as response:
        opened.release()
        for _ in response.iter_lines():
            if stop.is_set():
                return


def _sender(base: str, deadline: float, latencies: list[float]) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        i = 0
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            response = http.post("/e/bench", json={"name": workload.W1_EVENT, "data": {"i": i}})
            response.raise_for_status()
            latencies.append(1000 * (time.perf_counter() - t0))
            i += 1


def intake(url: str, logs: Path, clients: int, seconds: float, streams: int) -> dict[str, Any]:
    """Single-event intake by `clients` concurrent senders, with `streams` SSE clients open."""
    store = open_store(url)
    store.upgrade()
    store.close()
    server, base = _server(url, logs)
    workers = start_workers(url, 1, 8, logs)
    stop = threading.Event()
    opened = threading.Semaphore(0)
    listeners = [
        threading.Thread(target=_stream, args=(base, stop, opened), daemon=True)
        for _ in range(streams)
    ]
    try:
        for listener in listeners:
            listener.start()
        for _ in listeners:
            opened.acquire(timeout=30)
        latencies: list[list[float]] = [[] for _ in range(clients)]
        lists: list[float] = []
        deadline = time.perf_counter() + seconds
        with ThreadPoolExecutor(clients) as pool:
            for i in range(clients):
                pool.submit(_sender, base, deadline, latencies[i])
            with httpx.Client(base_url=base, timeout=30) as http:
                while time.perf_counter() < deadline:
                    t0 = time.perf_counter()
                    http.get("/v1/runs", params={"limit": 50}).raise_for_status()
                    lists.append(1000 * (time.perf_counter() - t0))
                    time.sleep(0.1)
        sent = [ms for per_client in latencies for ms in per_client]
    finally:
        stop.set()
        stop_all([server, *workers])
    return {
        "clients": clients,
        "sse_streams": streams,
        "events": len(sent),
        "events_per_s": round(len(sent) / seconds, 1),
        "intake": percentiles(sent),
        "list_runs_during": percentiles(lists),
    }


STORM = "function_id = 'storm-sleeper'"


def wakeup_storm(db: str, runs: int) -> dict[str, Any]:
    """`runs` runs sleep until one instant (in-process engine); when the last completed."""
    engine = Engine(workload.app, db=db).start()
    try:
        sent_at = time.time()
        at = sent_at + max(10.0, runs / 150)  # after every run has parked (checked below)
        events = [{"name": workload.STORM_EVENT, "data": {"i": i, "at": at}} for i in range(runs)]
        for i in range(0, runs, 500):
            engine.send(events[i : i + 500])
        count = _counter(db)
        sleeping = f"SELECT count(*) FROM runs WHERE {STORM} AND detail = 'SLEEPING'"
        wait_until(lambda: count(sleeping) >= runs, at - time.time(), 0.05, "every run parked")
        parked_s = time.time() - sent_at
        progress(f"wake-up storm: {runs} runs parked in {parked_s:.1f}s, until the instant")
        wait_until(
            lambda: (
                count(f"SELECT count(*) FROM runs WHERE {STORM} AND status = 'COMPLETED'") >= runs
            ),
            timeout_s=max(120.0, runs / 20),
            every_s=0.05,
            what="the storm's runs",
        )
        last_end = float(count(f"SELECT max(ended_at) FROM runs WHERE {STORM}"))
    finally:
        engine.stop(grace_seconds=5)
    drained = last_end - at
    return {
        "runs": runs,
        "seconds_to_park_them_all": round(parked_s, 3),
        "seconds_after_the_instant": round(drained, 3),
        "runs_per_s": round(runs / drained, 1),
        "steps_per_s": round(2 * runs / drained, 1),
    }


def _counter(db: str) -> Callable[[str], Any]:
    """Runs a one-value query on the database (its own connection)."""
    if db.startswith("postgresql"):
        conn: Any = psycopg.connect(db, autocommit=True)
    else:
        conn = sqlite3.connect(db)

    def count(query: str) -> Any:
        row = conn.execute(query).fetchone()
        return row[0] if row else 0

    return count


def _scale(
    url: str, logs: Path, clients: int, seconds: float, streams: int, storm: int
) -> dict[str, Any]:
    progress(f"intake: {clients} clients, single events, {seconds:g}s")
    result = {"intake": intake(url, logs, clients, seconds, 0)}
    progress(f"intake with {streams} SSE streams open")
    result["intake_with_streams"] = intake(url, logs, clients, seconds, streams)
    progress(f"wake-up storm: {storm} runs")
    result["wakeup_storm"] = wakeup_storm(url, storm)
    return result


def scale_sqlite(clients: int, seconds: float, streams: int, storm: int) -> dict[str, Any]:
    """The scale part on fresh SQLite files (one for intake, one for the storm)."""
    with scratch_dir() as tmp:
        return _scale(str(tmp / "scale.db"), tmp, clients, seconds, streams, storm)


def scale_postgres(
    admin_url: str, clients: int, seconds: float, streams: int, storm: int
) -> dict[str, Any]:
    """The scale part on a fresh PostgreSQL database."""
    from postgres_parts import bench_database

    with bench_database(admin_url, "scale") as url, scratch_dir() as tmp:
        return _scale(url, tmp, clients, seconds, streams, storm)

"""The flow part: W1 with a concurrency key, W1 with a cancel_on listener, beside plain W1.

On each store, in the same run: the raw limit before, `rounds` rounds of the three W1 variants
(the order rotated each round, so drift does not favour one), the cancel_on intake probe, the
raw limit after. Ratios to plain W1 are taken round by round (paired), then their median.
The machine's load average is recorded at the start and the end of each store's part.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import flow_workload
import psycopg
from flow_workload import CANCEL_EVENT, KEYS, LISTEN_EVENT, VARIANTS, W1_EVENT
from harness import progress, scratch_dir
from run import BATCH, Batches, raw_sqlite, w1_inprocess

from stepline.engine.engine import Engine

OTHER_EVENT = "bench/other"  # a name no run listens for
# SQL counts read after each variant, to show the option was in effect.
CHECKS = {
    "plain": {},
    "concurrency": {
        "functions_with_the_key": (
            "SELECT count(*) FROM functions WHERE config LIKE '%event.data.k%'"
        )
    },
    "cancel_on": {
        "functions_with_the_listener": (
            f"SELECT count(*) FROM functions WHERE config LIKE '%{CANCEL_EVENT}%'"
        ),
        "listener_rows_left_at_end": "SELECT count(*) FROM cancel_listeners",
    },
}

# Further figures of each W1 result given as their median over the rounds (where measured).
MEDIANS = (
    "enqueue_only_events_per_s",
    "cpu_ms_per_step",
    "worker_cpu_ms_per_step",
    "sender_cpu_ms_per_step",
    "postgres_backend_cpu_ms_per_step",
    "transactions_per_step",
)


def w1_batches(runs: int) -> Batches:
    """W1's events for the flow variants: data.i = run number, data.k = i mod KEYS."""
    events = [{"name": W1_EVENT, "data": {"i": i, "k": i % KEYS}} for i in range(runs)]
    return [events[i : i + BATCH] for i in range(0, runs, BATCH)]


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _rounds(
    rounds: int, run_variant: Callable[[str], dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Each variant once per round, the order rotated by one each round."""
    names = list(VARIANTS)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            results[name].append(run_variant(name))
    return results


def _summary(results: dict[str, list[dict[str, Any]]], limits: dict[str, float]) -> dict[str, Any]:
    """Per variant: medians, paired ratios to plain, each round's figures, the checks."""
    plain = results["plain"]
    summary: dict[str, Any] = {}
    for name, each in results.items():
        steps = [r["steps_per_s"] for r in each]
        ratios = [r["steps_per_s"] / p["steps_per_s"] for r, p in zip(each, plain, strict=True)]
        median_steps = statistics.median(steps)
        summary[name] = {
            "steps_per_s_median": round(median_steps, 1),
            "runs_per_s_median": round(statistics.median(r["runs_per_s"] for r in each), 1),
            "ratio_to_plain_median": round(statistics.median(ratios), 3),
            **{
                f"{key}_median": round(statistics.median(r[key] for r in each), 3)
                for key in MEDIANS
                if key in each[0]
            },
            **{
                f"{key}_ratio_to_plain": round(
                    statistics.median(r[key] for r in each)
                    / statistics.median(r[key] for r in plain),
                    3,
                )
                for key in MEDIANS
                if key.endswith("cpu_ms_per_step") and key in each[0]
            },
            **{
                f"steps_per_raw_tx_{limit}": round(median_steps / value, 4)
                for limit, value in limits.items()
            },
            "steps_per_s_each_round": steps,
            "ratio_to_plain_each_round": [round(x, 3) for x in ratios],
            "steps_completed_each_round": [r["steps"] for r in each],
            **{check: each[-1][check] for check in CHECKS[name]},
        }
    return summary


# -- the cancel_on intake probe -------------------------------------------------------------------


def _count(db: str | Path, query: str) -> int:
    """One SQL count on a new connection to `db` (a SQLite file or a PostgreSQL URL)."""
    if isinstance(db, Path):
        with contextlib.closing(sqlite3.connect(db)) as lite:
            return int(lite.execute(query).fetchone()[0])
    with psycopg.connect(db, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
        return int(row[0]) if row else 0


def _probe_one(db: str | Path, listeners: int, events: int) -> dict[str, Any]:
    """Intake cost per event while `listeners` queued runs listen for CANCEL_EVENT.

    `events` single-event sends of OTHER_EVENT, then as many of a CANCEL_EVENT that matches no
    listener; in blocks, not interleaved (a heavy send measurably slows the one after it).
    """
    engine = Engine(flow_workload.listener_app, db=db)
    try:
        engine.register()  # no worker: the runs stay queued, listening
        triggers = [{"name": LISTEN_EVENT, "data": {"k": k}} for k in range(listeners)]
        for i in range(0, listeners, BATCH):
            engine.send(triggers[i : i + BATCH])
        stored = _count(db, "SELECT count(*) FROM cancel_listeners")
        times: dict[str, list[float]] = {OTHER_EVENT: [], CANCEL_EVENT: []}
        for name, samples in times.items():
            for _ in range(events):
                t0 = time.perf_counter()
                engine.send({"name": name, "data": {"k": -1}})
                samples.append(1e6 * (time.perf_counter() - t0))
        cancelled = _count(db, "SELECT count(*) FROM runs WHERE status = 'CANCELLED'")
    finally:
        engine.stop()
    return {
        "listening_runs": listeners,
        "listener_rows": stored,
        "runs_cancelled": cancelled,
        "same_name_no_match_us_per_event": _us(times[CANCEL_EVENT]),
        "other_name_us_per_event": _us(times[OTHER_EVENT]),
    }


def _us(samples: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(samples), 1),
        "mean": round(statistics.fmean(samples), 1),
    }


def intake_probe(
    fresh_db: Callable[[str], Any], listener_counts: list[int], events: int
) -> dict[str, Any]:
    """The probe for each listener count, each on a fresh database (`fresh_db(part)`)."""
    found = []
    for m in listener_counts:
        progress(f"flow intake probe: {m} listening runs, {events} events of each kind")
        with fresh_db(f"intake_{m}") as db:
            found.append(_probe_one(db, m, events))
    return {
        "sender": "Engine.send, one event per call (one transaction each), no worker",
        "events_per_kind": events,
        "by_listening_runs": found,
    }


# -- the two stores ------------------------------------------------------------------------------


@contextmanager
def _sqlite_db(part: str) -> Iterator[Path]:
    with scratch_dir() as tmp:
        yield tmp / f"{part}.db"


def flow_sqlite(
    runs: int, rounds: int, raw_seconds: float, listener_counts: list[int], events: int
) -> dict[str, Any]:
    """The flow part on SQLite: in-process engine, slots=8, `Engine.send`."""
    load_start = _load()
    raw_before = raw_sqlite("NORMAL", raw_seconds)

    def variant(name: str) -> dict[str, Any]:
        progress(f"flow sqlite W1 {name}, {runs} runs")
        app = getattr(flow_workload, VARIANTS[name])
        return w1_inprocess(runs, 8, app, w1_batches(runs), CHECKS[name])

    results = _rounds(rounds, variant)
    intake = intake_probe(_sqlite_db, listener_counts, events)
    raw_after = raw_sqlite("NORMAL", raw_seconds)
    limit = (raw_before["tx_per_s"] + raw_after["tx_per_s"]) / 2
    return {
        "engine": "in-process Engine, WorkerSettings(slots=8), Engine.send in batches of 100",
        "load_avg_at_start": load_start,
        "load_avg_at_end": _load(),
        "raw_wal_normal_tx_per_s": {
            "before": raw_before["tx_per_s"],
            "after": raw_after["tx_per_s"],
            "used": round(limit, 1),
        },
        "W1": _summary(results, {"wal_normal": limit}),
        "cancel_on_intake": intake,
    }


def flow_postgres(
    admin_url: str,
    runs: int,
    rounds: int,
    raw_seconds: float,
    workers: int,
    listener_counts: list[int],
    events: int,
) -> dict[str, Any]:
    """The flow part on PostgreSQL: `workers` `stepline worker` processes, `Client.local`."""
    from postgres_parts import bench_database, raw_suite, retrying, w1_postgres

    load_start = _load()
    raw_before = retrying(
        admin_url, "raw", lambda: raw_suite(admin_url, raw_seconds, reference=False)
    )
    target = str(Path(flow_workload.__file__).resolve())

    def variant(name: str) -> dict[str, Any]:
        progress(f"flow postgres W1 {name}, {workers} worker process(es), {runs} runs")
        part = functools.partial(
            w1_postgres,
            admin_url,
            runs,
            workers,
            8,
            f"{target}:{VARIANTS[name]}",
            w1_batches(runs),
            CHECKS[name],
        )
        return retrying(admin_url, f"flow W1 {name}", part)

    results = _rounds(rounds, variant)
    intake = retrying(
        admin_url,
        "flow intake",
        lambda: intake_probe(functools.partial(bench_database, admin_url), listener_counts, events),
    )
    raw_after = retrying(
        admin_url, "raw", lambda: raw_suite(admin_url, raw_seconds, reference=False)
    )
    c1, c4 = (
        statistics.fmean(r[k]["tx_per_s"] for r in (raw_before, raw_after))
        for k in ("c1_sync_on", "c4_sync_on")
    )
    return {
        "engine": f"{workers} x `stepline worker --slots 8`, Client.local in batches of 100",
        "load_avg_at_start": load_start,
        "load_avg_at_end": _load(),
        "raw_sync_on_tx_per_s": {
            "c1_before": raw_before["c1_sync_on"]["tx_per_s"],
            "c1_after": raw_after["c1_sync_on"]["tx_per_s"],
            "c4_before": raw_before["c4_sync_on"]["tx_per_s"],
            "c4_after": raw_after["c4_sync_on"]["tx_per_s"],
        },
        "W1": _summary(results, {"c1": c1, "c4": c4}),
        "cancel_on_intake": intake,
    }

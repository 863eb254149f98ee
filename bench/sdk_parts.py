"""The sdk part: W1 and W2 of an Inngest SDK app over HTTP, beside the same function in-process.

On each store, in the same run: the raw limit before, `rounds` rounds of three variants (the
order rotated each round, so drift favours none), the raw limit after. Each variant, each
round, on a fresh database: `stepline dev` in a child process (engine, worker with 8 slots,
server on 127.0.0.1; what an SDK user runs), then W1 (`runs` runs sent in batches of 100 with
POST /e/bench) and W2 (`latency_runs` runs sent one at a time) of W1's function, three no-op
steps returning `{"run", "step", "t"}`:

- `inprocess`: the function on a Stepline `App` (`workload.py`), run in the engine's process.
- `python_sdk`: the same on the official Python SDK (`sdk_workload.py`: FastAPI + uvicorn,
  one process), synced by a PUT to its serve URL and called by the HTTP driver.
- `ts_sdk`: the same on the official npm SDK with Express on Node (`sdk_ts_app.cjs`).

An SDK run is 4 calls to the app: each call runs one step (the app answers 206 with the step's
result, the engine commits it and calls again), the fourth returns the function's result.
Ratios and costs are taken round by round against `inprocess` (paired), then their median.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import workload
from harness import (
    BENCH,
    STEPLINE,
    Child,
    cpu_seconds_self,
    free_port,
    idle_between_runs,
    peak_rss_mb,
    percentiles,
    progress,
    scratch_dir,
    stop_all,
    wait_for_health,
    wait_until,
)
from postgres_parts import backend_cpu, bench_database, cpu_delta, raw_suite, retrying
from run import BATCH, raw_sqlite

VARIANTS = ("inprocess", "python_sdk", "ts_sdk")
FUNCTION_IDS = {
    "inprocess": "w1-three-steps",
    "python_sdk": "bench-py-w1-three-steps",
    "ts_sdk": "bench-ts-w1-three-steps",
}
STEPS_PER_RUN = 3
CALLS_PER_RUN = 4  # one call per step, then the call that returns the function's result
SLOTS = 8
TS_PROJECT = Path(
    os.environ.get("BENCH_TS_PROJECT", BENCH.parent / "tests" / "inngest" / "ts_app")
).resolve()
W2_POLL_S = 0.002
START_S = 60.0
ENDED = "status IN ('COMPLETED', 'FAILED', 'CANCELLED')"


# -- the database under test ---------------------------------------------------------------------


class Poll:
    """A connection to the bench database (a SQLite file or a PostgreSQL URL); `?` params."""

    def __init__(self, db: Path | str) -> None:
        self.lite = sqlite3.connect(db, isolation_level=None) if isinstance(db, Path) else None
        self.pg = None if isinstance(db, Path) else psycopg.connect(db, autocommit=True)

    def row(self, query: str, *params: Any) -> tuple[Any, ...] | None:
        """The first row of `query`, if any."""
        if self.lite is not None:
            found = self.lite.execute(query, params).fetchone()
        else:
            assert self.pg is not None
            found = self.pg.execute(query.replace("?", "%s"), params).fetchone()
        return None if found is None else tuple(found)

    def value(self, query: str, *params: Any) -> Any:
        """The first column of the first row of `query` (an aggregate: there is one)."""
        found = self.row(query, *params)
        assert found is not None, query
        return found[0]

    def close(self) -> None:
        if self.lite is not None:
            self.lite.close()
        if self.pg is not None:
            self.pg.close()


# -- the processes -------------------------------------------------------------------------------


def ts_unavailable() -> str | None:
    """Why the TypeScript variant cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not (TS_PROJECT / "node_modules" / "inngest").is_dir():
        return f"{TS_PROJECT}/node_modules has no inngest: run `npm ci` there"
    return None


def _start_engine(variant: str, db: Path | str, port: int, logs: Path) -> Child:
    apps = [str(BENCH / "workload.py")] if variant == "inprocess" else []
    cmd = [str(STEPLINE), "dev", *apps, "--db", str(db), "--port", str(port)]
    return Child([*cmd, "--slots", str(SLOTS)], logs / "dev.log")


def start_app(variant: str, stepline_url: str, logs: Path) -> tuple[Child, str]:
    """The SDK app's process, serving on a free loopback port; (child, serve URL)."""
    port = free_port()
    env = {"INNGEST_DEV": stepline_url}
    if variant == "python_sdk":
        cmd = [sys.executable, str(BENCH / "sdk_workload.py"), "--port", str(port)]
        child = Child([*cmd, "--event", workload.W1_EVENT], logs / "app.log", env)
    else:
        node = shutil.which("node") or "node"
        env |= {"PORT": str(port), "BENCH_EVENT": workload.W1_EVENT}
        child = Child([node, str(BENCH / "sdk_ts_app.cjs")], logs / "app.log", env)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if child.proc.poll() is not None:
            raise RuntimeError(f"{variant} app exited: {child.log.read_text()[-2000:]}")
        try:
            return httpx.get(f"{base}/bench/stats", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(answers, timeout_s=START_S, every_s=0.05, what=f"{variant} app start")
    except BaseException:
        stop_all([child])
        raise
    return child, f"{base}/api/inngest"


def sync_app(serve_url: str, poll: Poll, function_id: str) -> None:
    """Ask the app to sync (a PUT, as a deploy hook does); check its function is registered."""
    response = httpx.put(serve_url, timeout=30)
    if response.status_code != 200:
        raise RuntimeError(f"sync of {serve_url}: {response.status_code} {response.text[:500]}")
    if poll.value("SELECT count(*) FROM functions WHERE id = ?", function_id) != 1:
        raise RuntimeError(f"sync of {serve_url} did not register {function_id}")


def app_stats(serve_url: str) -> tuple[int, float]:
    """The app's /bench/stats: (calls served at the serve path, seconds spent in them)."""
    stats = httpx.get(serve_url.removesuffix("/api/inngest") + "/bench/stats", timeout=10).json()
    return int(stats["calls"]), float(stats["seconds"])


# -- W1 and W2 -----------------------------------------------------------------------------------


def _w1(
    http: httpx.Client,
    poll: Poll,
    runs: int,
    cpu: dict[str, Callable[[], float]],
    app_url: str | None,
) -> dict[str, Any]:
    """`runs` runs sent in batches of 100; timed from the first send to the last run's end."""
    events = [{"name": workload.W1_EVENT, "data": {"i": i}} for i in range(runs)]
    app0 = app_stats(app_url) if app_url else (0, 0.0)
    cpu0 = {name: read() for name, read in cpu.items()}
    psutil.cpu_percent(interval=None)
    wall0 = time.time()
    t0 = time.perf_counter()
    for i in range(0, runs, BATCH):
        http.post("/e/bench", json=events[i : i + BATCH]).raise_for_status()
    sent_s = time.perf_counter() - t0

    def ended() -> bool:
        return int(poll.value(f"SELECT count(*) FROM runs WHERE {ENDED}")) >= runs

    wait_until(ended, timeout_s=max(120.0, runs / 5), every_s=0.05, what="W1 runs")
    polled_s = time.perf_counter() - t0
    spent = {name: read() - cpu0[name] for name, read in cpu.items()}
    busy = psutil.cpu_percent(interval=None)
    last_end = poll.value("SELECT max(ended_at) FROM runs")
    completed = poll.value("SELECT count(*) FROM runs WHERE status = 'COMPLETED'")
    steps = poll.value("SELECT count(*) FROM steps WHERE status = 'completed'")
    if completed != runs or steps != STEPS_PER_RUN * runs:
        error = poll.row("SELECT error FROM runs WHERE status <> 'COMPLETED'")
        raise RuntimeError(f"W1: {completed}/{runs} runs, {steps} steps completed: {error}")
    elapsed = min(polled_s, float(last_end) - wall0)
    n_steps = STEPS_PER_RUN * runs
    result: dict[str, Any] = {
        "runs": runs,
        "seconds": round(elapsed, 3),
        "send_seconds": round(sent_s, 3),
        "steps_per_s": round(n_steps / elapsed, 1),
        **{f"{name}_cpu_ms_per_step": round(1000 * s / n_steps, 3) for name, s in spent.items()},
        "system_cpu_busy_pct": busy,
    }
    if app_url:
        calls, seconds = (b - a for a, b in zip(app0, app_stats(app_url), strict=True))
        result["app_calls_per_run"] = round(calls / runs, 2)
        result["app_ms_per_call"] = round(1000 * seconds / max(calls, 1), 3)
    return result


def _w2(http: httpx.Client, poll: Poll, n: int, app_url: str | None) -> dict[str, Any]:
    """Runs sent one at a time (50-150 ms apart): event → first step, event → run end, in ms.

    The first step's time is the `t` its body returned; the run's end is its `ended_at`.
    """
    query = (
        f"SELECT r.ended_at, s.output, r.status FROM runs r LEFT JOIN steps s "
        f"ON s.run_id = r.id AND s.id = 's1' WHERE r.event_id = ? AND r.{ENDED}"
    )
    first, end, posts = [], [], []
    app0 = app_stats(app_url) if app_url else (0, 0.0)
    for seq in range(n):
        idle_between_runs()
        t0 = time.time()
        response = http.post("/e/bench", json={"name": workload.W1_EVENT, "data": {"i": seq}})
        posts.append(1000 * (time.time() - t0))
        response.raise_for_status()
        event_id = response.json()["ids"][0]
        found: list[tuple[Any, ...]] = []

        def done(eid: str = event_id, out: list[tuple[Any, ...]] = found) -> bool:
            row = poll.row(query, eid)
            if row is not None:
                out.append(row)
            return row is not None

        wait_until(done, timeout_s=10, every_s=W2_POLL_S, what=f"W2 run {seq}")
        ended_at, output, status = found[0]
        if status != "COMPLETED":
            raise RuntimeError(f"W2 run {seq} ended {status}")
        first.append(1000 * (float(json.loads(output)["t"]) - t0))
        end.append(1000 * (float(ended_at) - t0))
    result = {
        "first_step": percentiles(first),
        "run_end": percentiles(end),
        "post_p50_ms": round(statistics.median(posts), 3),
        "run_end_ms_each": [round(x, 3) for x in end],
        "first_step_ms_each": [round(x, 3) for x in first],
    }
    if app_url:
        calls, seconds = (b - a for a, b in zip(app0, app_stats(app_url), strict=True))
        result["app_ms_per_call"] = round(1000 * seconds / max(calls, 1), 3)
    return result


def _serve(
    variant: str, port: int, poll: Poll, logs: Path, children: list[Child]
) -> tuple[str | None, dict[str, Callable[[], float]]]:
    """Start and sync the variant's SDK app (none in-process); (serve URL, CPU readers)."""
    engine = children[0]
    cpu = {"engine": engine.cpu_seconds, "sender": cpu_seconds_self}
    if variant == "inprocess":
        return None, cpu
    app, app_url = start_app(variant, f"http://127.0.0.1:{port}", logs)
    children.append(app)
    sync_app(app_url, poll, FUNCTION_IDS[variant])
    return app_url, {**cpu, "app": app.cpu_seconds}


def measure(
    variant: str, db: Path | str, runs: int, latency_runs: int, logs: Path
) -> dict[str, Any]:
    """One variant on a fresh database: start the processes, W1, then W2, stop them by PID."""
    port = free_port()
    engine = _start_engine(variant, db, port, logs)
    children = [engine]
    load = round(os.getloadavg()[0], 2)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            wait_for_health(
                http,
                lambda: (
                    f"stepline dev exited: {engine.log.read_text()[-2000:]}"
                    if engine.proc.poll() is not None
                    else None
                ),
            )
            poll = Poll(db)
            try:
                app_url, cpu = _serve(variant, port, poll, logs, children)
                dbname = db.rsplit("/", 1)[1] if isinstance(db, str) else None
                pg0 = backend_cpu(dbname) if dbname else {}
                w1 = _w1(http, poll, runs, cpu, app_url)
                if dbname:
                    backends, _ = cpu_delta(pg0, backend_cpu(dbname))
                    per_step = 1000 * backends / (STEPS_PER_RUN * runs)
                    w1["postgres_backend_cpu_ms_per_step"] = round(per_step, 3)
                w2 = _w2(http, poll, latency_runs, app_url)
            finally:
                poll.close()
    finally:
        # Read here: `Child.stop` reads VmHWM again while the process exits, and may get 0.
        rss = [peak_rss_mb(c.pid) for c in children]
        stop_all(children)
    return {"load_1m": load, "W1": w1, "W2": w2, "peak_rss_mb": rss}


# -- rounds and their summary --------------------------------------------------------------------


def _rounds(
    variants: list[str], rounds: int, run_variant: Callable[[str], dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Each variant once per round, the order rotated by one each round."""
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for r in range(rounds):
        k = r % len(variants)
        for name in variants[k:] + variants[:k]:
            results[name].append(run_variant(name))
    return results


def _median(values: list[float], digits: int = 3) -> float:
    return round(statistics.median(values), digits)


def _w1_summary(
    each: list[dict[str, Any]], base: list[dict[str, Any]] | None, limits: dict[str, float]
) -> dict[str, Any]:
    """Medians over the rounds; against `base` (in-process, same rounds) unless it is None."""
    rates = [r["steps_per_s"] for r in each]
    paired = list(zip(rates, (b["steps_per_s"] for b in base or each), strict=True))
    summary: dict[str, Any] = {
        "steps_per_s_median": _median(rates, 1),
        "steps_per_s_each_round": rates,
        "ratio_to_inprocess_median": _median([r / b for r, b in paired]),
        "ratio_to_inprocess_each_round": [round(r / b, 3) for r, b in paired],
    }
    if base is not None:
        costs = [1000 * (1 / r - 1 / b) for r, b in paired]
        summary["http_cost_ms_per_step_median"] = _median(costs)
        summary["http_cost_ms_per_step_each_round"] = [round(c, 3) for c in costs]
    for key in each[0]:
        if key.endswith(("_ms_per_step", "_ms_per_call", "_per_run", "_busy_pct")):
            summary[f"{key}_median"] = _median([r[key] for r in each])
    for limit, value in limits.items():
        summary[f"steps_per_raw_tx_{limit}"] = round(summary["steps_per_s_median"] / value, 4)
    return summary


def _w2_summary(each: list[dict[str, Any]], base: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Percentiles of all rounds' runs; p50 differences to `base` round by round."""
    pooled = {
        kind: percentiles([x for r in each for x in r[f"{kind}_ms_each"]])
        for kind in ("first_step", "run_end")
    }
    p50s = [r["run_end"]["p50_ms"] for r in each]
    summary: dict[str, Any] = {
        "runs_pooled": pooled["run_end"]["n"],
        **{
            f"{kind}_{q}_ms": pooled[kind][f"{q}_ms"]
            for kind in ("first_step", "run_end")
            for q in ("p50", "p95", "p99")
        },
        "run_end_p50_ms_each_round": p50s,
        "post_p50_ms_median": _median([r["post_p50_ms"] for r in each]),
    }
    if base is not None:
        diffs = [p - b["run_end"]["p50_ms"] for p, b in zip(p50s, base, strict=True)]
        firsts = [
            r["first_step"]["p50_ms"] - b["first_step"]["p50_ms"]
            for r, b in zip(each, base, strict=True)
        ]
        summary["run_end_p50_extra_ms_median"] = _median(diffs)
        summary["http_cost_ms_per_call"] = _median([d / CALLS_PER_RUN for d in diffs])
        summary["http_cost_ms_per_step"] = _median([d / STEPS_PER_RUN for d in diffs])
        summary["first_step_p50_extra_ms_median"] = _median(firsts)
        summary["app_ms_per_call_median"] = _median([r["app_ms_per_call"] for r in each])
    return summary


def _summary(results: dict[str, list[dict[str, Any]]], limits: dict[str, float]) -> dict[str, Any]:
    """Per variant: W1 and W2 figures, paired with `inprocess` round by round."""

    def part(name: str, key: str) -> list[dict[str, Any]] | None:
        return None if name == "inprocess" else [r[key] for r in results["inprocess"]]

    return {
        name: {
            "W1": _w1_summary([r["W1"] for r in each], part(name, "W1"), limits),
            "W2": _w2_summary([r["W2"] for r in each], part(name, "W2")),
            "load_1m_each_round": [r["load_1m"] for r in each],
            "tries_each_round": [r.get("tries", 1) for r in each],
            "peak_rss_mb_each_round": [r["peak_rss_mb"] for r in each],
        }
        for name, each in results.items()
    }


def _variants() -> tuple[list[str], dict[str, str]]:
    """The variants that can run here, and why any is left out."""
    reason = ts_unavailable()
    if reason is None:
        return list(VARIANTS), {}
    progress(f"sdk: ts_sdk left out ({reason})")
    return [v for v in VARIANTS if v != "ts_sdk"], {"ts_sdk": reason}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _setup(runs: int, latency_runs: int, rounds: int) -> dict[str, Any]:
    return {
        "engine": f"`stepline dev --slots {SLOTS}` (one process: engine, worker, server)",
        "sender": f"httpx POST /e/bench: W1 in batches of {BATCH}, W2 one event at a time",
        "apps": {
            "python_sdk": "bench/sdk_workload.py: inngest (PyPI) + FastAPI on uvicorn",
            "ts_sdk": f"bench/sdk_ts_app.cjs: inngest (npm) + Express on Node, from {TS_PROJECT}",
        },
        "runs": runs,
        "latency_runs_per_round": latency_runs,
        "rounds": rounds,
        "calls_per_sdk_run": CALLS_PER_RUN,
    }


# -- the two stores ------------------------------------------------------------------------------


def sdk_sqlite(runs: int, latency_runs: int, rounds: int, raw_seconds: float) -> dict[str, Any]:
    """The sdk part on SQLite files (a fresh file per variant and round)."""
    load_start = _load()
    variants, left_out = _variants()
    raw_before = raw_sqlite("NORMAL", raw_seconds)

    def variant(name: str) -> dict[str, Any]:
        progress(f"sdk sqlite {name}: W1 {runs} runs, W2 {latency_runs} runs")
        with scratch_dir() as tmp:
            return measure(name, tmp / "sdk.db", runs, latency_runs, tmp)

    results = _rounds(variants, rounds, variant)
    raw_after = raw_sqlite("NORMAL", raw_seconds)
    limit = (raw_before["tx_per_s"] + raw_after["tx_per_s"]) / 2
    return {
        **_setup(runs, latency_runs, rounds),
        "left_out": left_out,
        "load_avg_at_start": load_start,
        "load_avg_at_end": _load(),
        "raw_wal_normal_tx_per_s": {
            "before": raw_before["tx_per_s"],
            "after": raw_after["tx_per_s"],
            "used": round(limit, 1),
        },
        "variants": _summary(results, {"wal_normal": limit}),
    }


def sdk_postgres(
    admin_url: str, runs: int, latency_runs: int, rounds: int, raw_seconds: float
) -> dict[str, Any]:
    """The sdk part on PostgreSQL (a fresh database per variant and round)."""
    load_start = _load()
    variants, left_out = _variants()

    def raw() -> dict[str, Any]:
        return retrying(
            admin_url, "raw", lambda: raw_suite(admin_url, raw_seconds, reference=False)
        )

    raw_before = raw()

    def variant(name: str) -> dict[str, Any]:
        progress(f"sdk postgres {name}: W1 {runs} runs, W2 {latency_runs} runs")

        def part() -> dict[str, Any]:
            with bench_database(admin_url, f"sdk_{name}") as url, scratch_dir() as tmp:
                return measure(name, url, runs, latency_runs, tmp)

        return retrying(admin_url, f"sdk {name}", part)

    results = _rounds(variants, rounds, variant)
    raw_after = raw()
    c1, c4 = (
        statistics.fmean(r[k]["tx_per_s"] for r in (raw_before, raw_after))
        for k in ("c1_sync_on", "c4_sync_on")
    )
    return {
        **_setup(runs, latency_runs, rounds),
        "left_out": left_out,
        "load_avg_at_start": load_start,
        "load_avg_at_end": _load(),
        "raw_sync_on_tx_per_s": {
            "c1_before": raw_before["c1_sync_on"]["tx_per_s"],
            "c1_after": raw_after["c1_sync_on"]["tx_per_s"],
            "c4_before": raw_before["c4_sync_on"]["tx_per_s"],
            "c4_after": raw_after["c4_sync_on"]["tx_per_s"],
        },
        "variants": _summary(results, {"c1": c1, "c4": c4}),
    }

"""Where an SDK step's time goes in the engine: the HTTP driver, timed in-process.

    .venv/bin/python bench/sdk_profile.py [--app python_sdk|ts_sdk] [--runs 300] [--db URL]
        [--cprofile 25]

An `Engine` with no Python apps runs in this process (8 slots, the SQLite file of a scratch
directory unless `--db` names a PostgreSQL URL), its server on a free loopback port (for the
sync); the SDK app runs in a child process, as in the sdk part, and is synced. W1's runs are
sent with `Engine.send` in batches of 100. Printed as JSON, per step and per call:

- `threads`: CPU of each of this process's threads over the W1 runs (psutil, by thread id):
  the worker's event loop (drives the calls: request building, httpx, reply parsing), the
  default executor's threads (the store writes `asyncio.to_thread` hands them), the claim loop.
- `pieces`: wall and thread CPU of the driver's pieces, from counters wrapped around them
  (this process's classes and module functions are wrapped; Stepline's files are unchanged):
  `memo`, `Call.payload`, `_encode` (JSON), `AsyncClient.send` + `_read` (the HTTP exchange
  as the loop sees it, the app's time included), `parse_reply`, `Writer.handle` (the store
  write a reply means), `settle_due`, the store's `claim_runs` / `commit_step` / `finish_run`,
  and the `asyncio.to_thread` hop around each store write (its wall minus the write's own).
- `app`: the app's own time per call (its /bench/stats) and its process CPU.
- with `--cprofile N`: the N functions of the event loop's thread with most own time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import io
import json
import os
import pstats
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import uvicorn
import workload
from harness import free_port, progress, scratch_dir, stop_all, wait_until
from sdk_parts import FUNCTION_IDS, STEPS_PER_RUN, Poll, app_stats, start_app, sync_app

from stepline.engine.engine import Engine, EngineSettings
from stepline.engine.inngest import driver, settling, writer
from stepline.engine.inngest.call import Call
from stepline.engine.inngest.memo import memo
from stepline.engine.inngest.reply import parse_reply
from stepline.engine.worker import WorkerSettings
from stepline.server.app import create_app

# name -> [calls, wall seconds, thread CPU seconds]
COUNTERS: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
_LOCK = threading.Lock()


def _add(name: str, wall: float, cpu: float) -> None:
    with _LOCK:
        entry = COUNTERS[name]
        entry[0] += 1
        entry[1] += wall
        entry[2] += cpu


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` (sync), counted under `name`: wall and thread CPU."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        w0, c0 = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            _add(name, time.perf_counter() - w0, time.thread_time() - c0)

    return wrapper


def timed_async(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` (a coroutine function), counted under `name`: wall only (its CPU interleaves)."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        w0 = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            _add(name, time.perf_counter() - w0, 0.0)

    return wrapper


def _hop(original: Callable[..., Any]) -> Callable[..., Any]:
    """`asyncio.to_thread`, counted: its wall, and the wall of the function it ran."""

    async def to_thread(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        inner = [0.0]

        def run() -> Any:
            w0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                inner[0] = time.perf_counter() - w0

        w0 = time.perf_counter()
        try:
            return await original(run)
        finally:
            _add("to_thread hop (wall minus the work)", time.perf_counter() - w0 - inner[0], 0.0)

    return to_thread


def instrument(store: Any) -> None:
    """Wrap the driver's pieces and the store's hot methods with counters."""
    setattr(driver, "memo", timed("memo (steps map)", memo))  # noqa: B010
    Call.payload = timed("Call.payload", Call.payload)  # type: ignore[method-assign]
    cls = driver.HttpDriver
    cls._encode = timed("_encode (JSON)", cls._encode)  # type: ignore[method-assign]
    cls._read = timed_async("_read (body)", cls._read)  # type: ignore[method-assign]
    cls._call = timed_async("_call (whole call)", cls._call)  # type: ignore[method-assign]
    cls.execute = timed_async("execute (whole run)", cls.execute)  # type: ignore[method-assign]
    send = timed_async("AsyncClient.send (to headers)", httpx.AsyncClient.send)
    httpx.AsyncClient.send = send  # type: ignore[method-assign]
    setattr(driver, "parse_reply", timed("parse_reply", parse_reply))  # noqa: B010
    writer.Writer.handle = timed("Writer.handle (store write)", writer.Writer.handle)  # type: ignore[method-assign]
    settle = timed("Settler.settle_due", settling.Settler.settle_due)
    settling.Settler.settle_due = settle  # type: ignore[method-assign]
    driver.asyncio.to_thread = _hop(asyncio.to_thread)  # type: ignore[attr-defined]
    for method in ("claim_runs", "commit_step", "finish_run"):
        setattr(store, method, timed(f"store.{method}", getattr(store, method)))


def thread_cpu() -> dict[str, float]:
    """CPU seconds of this process's threads so far, summed by name (digits dropped)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    found: dict[str, float] = defaultdict(float)
    for t in psutil.Process().threads():
        name = re.sub(r"[-_]?\d+$", "", names.get(t.id, "other"))
        found[name] += t.user_time + t.system_time
    return dict(found)


def serve(engine: Engine) -> tuple[uvicorn.Server, threading.Thread, str]:
    """The server for the engine on a free loopback port, in a thread."""
    port = free_port()
    config = uvicorn.Config(
        create_app(engine.operations), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="bench-server", daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout_s=30, every_s=0.02, what="server start")
    return server, thread, f"http://127.0.0.1:{port}"


def _per(n: float, seconds: float) -> float:
    return round(1000 * seconds / n, 3)


GROUPS = (  # (name, what a function's file name contains), first match wins
    ("httpx/httpcore/h11/anyio (HTTP client)", ("/httpx/", "/httpcore/", "/h11/", "/anyio/")),
    ("importlib (failed `import sniffio` in httpcore)", ("importlib", "_distutils_hack")),
    ("stepline", ("/stepline/",)),
    ("asyncio", ("/asyncio/",)),
    ("json", ("/json/",)),
)


def _profile_of(prof: cProfile.Profile, top: int) -> dict[str, Any]:
    """The loop thread's own time (thread CPU) by package, and its top functions."""
    stats = pstats.Stats(prof)
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    groups: dict[str, float] = defaultdict(float)
    for (file, _, func), (_, _, tottime, _, _) in table.items():
        where = f"{file}:{func}"
        name = next((g for g, keys in GROUPS if any(k in where for k in keys)), None)
        if name is None:
            name = "builtins and C (socket, select, ...)" if file == "~" else "other"
        groups[name] += tottime
    total = sum(groups.values())
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return {
        "share_of_own_time_by_package": {
            name: round(seconds / total, 3)
            for name, seconds in sorted(groups.items(), key=lambda kv: -kv[1])
        },
        "top_functions": [line for line in out.getvalue().splitlines() if line.strip()][-top - 1 :],
    }


def profile(app: str, runs: int, db: str | None, top: int) -> dict[str, Any]:
    """W1 runs of the SDK app with the counters on; the figures per step and per call."""
    with scratch_dir() as tmp:
        target: Path | str = db or tmp / "profile.db"
        settings = EngineSettings(worker=WorkerSettings(slots=8))
        engine = Engine([], db=target, settings=settings)
        instrument(engine.store)
        engine.start()
        server, thread, url = serve(engine)
        children = []
        poll = Poll(target)
        try:
            child, app_url = start_app(app, url, tmp)
            children.append(child)
            sync_app(app_url, poll, FUNCTION_IDS[app])
            engine.send({"name": workload.W1_EVENT, "data": {"i": -1}})  # warm-up run
            wait_until(lambda: _ended(poll) >= 1, timeout_s=30, every_s=0.02, what="warm-up")
            COUNTERS.clear()
            prof = cProfile.Profile(time.thread_time)  # CPU, not wall: the machine is shared
            loop = engine.worker._loop
            if top:
                loop.call_soon_threadsafe(prof.enable)
            threads0, app0, app_cpu0 = thread_cpu(), app_stats(app_url), child.cpu_seconds()
            t0 = time.perf_counter()
            events = [{"name": workload.W1_EVENT, "data": {"i": i}} for i in range(runs)]
            for i in range(0, runs, 100):
                engine.send(events[i : i + 100])
            wait_until(lambda: _ended(poll) >= runs + 1, timeout_s=600, every_s=0.05, what="W1")
            wall = time.perf_counter() - t0
            if top:
                done = threading.Event()

                def stop_profiling() -> None:
                    prof.disable()
                    done.set()

                loop.call_soon_threadsafe(stop_profiling)
                done.wait(10)
            threads1, app1, app_cpu1 = thread_cpu(), app_stats(app_url), child.cpu_seconds()
        finally:
            poll.close()
            stop_all(children)
            server.should_exit = True
            thread.join(timeout=10)
            engine.stop(grace_seconds=5)
    steps = STEPS_PER_RUN * runs
    calls = app1[0] - app0[0]
    pieces = {
        name: {
            "per_step_ms": _per(steps, wall_s),
            "cpu_per_step_ms": _per(steps, cpu_s) if cpu_s else None,
            "calls_per_step": round(n / steps, 2),
        }
        for name, (n, wall_s, cpu_s) in sorted(COUNTERS.items(), key=lambda kv: -kv[1][1])
    }
    return {
        "app": app,
        "store": "postgresql" if db else "sqlite",
        "runs": runs,
        "steps_per_s": round(steps / wall, 1),
        "calls_per_step": round(calls / steps, 2),
        "threads_cpu_ms_per_step": {
            name: _per(steps, cpu - threads0.get(name, 0.0))
            for name, cpu in sorted(threads1.items(), key=lambda kv: -kv[1])
            if cpu - threads0.get(name, 0.0) > 0.001
        },
        "pieces": pieces,
        "app_own_ms_per_call": _per(calls, app1[1] - app0[1]),
        "app_cpu_ms_per_step": _per(steps, app_cpu1 - app_cpu0),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        **({"cprofile_loop_thread": _profile_of(prof, top)} if top else {}),
    }


def _ended(poll: Poll) -> int:
    return int(poll.value("SELECT count(*) FROM runs WHERE status = 'COMPLETED'"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", choices=["python_sdk", "ts_sdk"], default="python_sdk")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--db", default=None, help="a PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--cprofile", type=int, default=0, help="top N functions (0: off)")
    args = parser.parse_args()
    progress(f"profile: {args.app}, {args.runs} runs")
    print(json.dumps(profile(args.app, args.runs, args.db, args.cprofile), indent=2))


if __name__ == "__main__":
    main()

"""The engine under test in its own process, started and stopped (SIGTERM) by `run.py`.

    python bench/engine_proc.py --db FILE --slots 8 --stats-out FILE [--port N]

Without `--port`: an `Engine` (worker + scheduler) on `--db`; prints `READY` once its functions
are registered. With `--port`: the same engine plus the server (`create_app` under uvicorn on
127.0.0.1 only, as `stepline dev` runs it). On SIGTERM it stops and writes its peak RSS and CPU
time to `--stats-out` as JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import uvicorn
from workload import app

from stepline.engine.engine import Engine, EngineSettings
from stepline.engine.worker import WorkerSettings
from stepline.server.app import create_app


def _stats() -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "peak_rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
        "cpu_user_s": usage.ru_utime,
        "cpu_sys_s": usage.ru_stime,
        "wall_s": time.monotonic(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--stats-out", required=True)
    args = parser.parse_args()

    settings = EngineSettings(worker=WorkerSettings(slots=args.slots))
    engine = Engine(app, db=Path(args.db), settings=settings)
    engine.start()
    stop = threading.Event()

    def _on_term(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    try:
        if args.port is not None:
            # The server runs on a thread (so uvicorn installs no signal handlers of its own);
            # SIGTERM lands here, stops it, then the engine, then writes the stats.
            config = uvicorn.Config(
                create_app(engine.operations),
                host="127.0.0.1",
                port=args.port,
                log_level="warning",
                access_log=False,
            )
            server = uvicorn.Server(config)
            thread = threading.Thread(target=server.run, name="bench-uvicorn", daemon=True)
            thread.start()
        print("READY", flush=True)
        stop.wait()
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout=10)
    finally:
        engine.stop(grace_seconds=5)
        Path(args.stats_out).write_text(json.dumps(_stats()))
    sys.exit(0)


if __name__ == "__main__":
    main()

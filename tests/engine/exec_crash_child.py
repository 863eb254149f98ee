"""A worker process for test_exec_crash: runs one function whose step is a command.

Usage: python exec_crash_child.py DB PIDS_FILE first|second

The command writes the pids of its shell and of a child of its own to PIDS_FILE, then, in the
"first" worker (which the test kills with SIGKILL), runs for a minute; in the "second" it ends.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import stepline
from stepline.engine.engine import Engine, EngineSettings
from stepline.engine.worker import WorkerSettings
from stepline.sdk.step import Step

LEASE_SECONDS = 1.5
SCRIPT = 'sleep 60 & echo $! $$ end >> "$1"; if [ "$MODE" = first ]; then wait; fi; echo done'


def main(db: str, pids: Path, mode: str) -> None:
    app = stepline.App("crash")

    @app.function(id="scripted")
    def scripted(ctx: stepline.Context[Step]) -> dict[str, Any]:
        return ctx.step.exec("script", ["sh", "-c", SCRIPT, "sh", str(pids)], env={"MODE": mode})

    settings = EngineSettings(
        worker=WorkerSettings(slots=2, lease_seconds=LEASE_SECONDS, poll_seconds=0.05),
        scheduler_poll_seconds=0.2,
    )
    engine = Engine(app, db=db, settings=settings).start()
    if mode == "first":
        engine.invoke("scripted")
    threading.Event().wait(120)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), sys.argv[3])

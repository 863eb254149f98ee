"""A worker process for test_crash_recovery: runs one function whose steps leave side effects.

Usage: python crash_child.py DB SIDE_EFFECT_FILE first|second PAD

"first" starts a run and blocks inside its second step (the test kills it there); "second"
picks the run up after the dead worker's lease expires and finishes it. Each step appends
"<step> <pid> <unix time>" to SIDE_EFFECT_FILE before anything else, outside the engine.
Each step returns its name followed by PAD spaces (over 256 KiB: stored as a blob); the
function returns the names.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import stepline
from stepline.engine.engine import Engine, EngineSettings
from stepline.engine.worker import WorkerSettings
from stepline.sdk.step import Step

LEASE_SECONDS = 1.5


def main(db: str, side_effects: Path, mode: str, pad: int) -> None:
    app = stepline.App("crash")

    def effect(name: str) -> str:
        with side_effects.open("a") as out:
            out.write(f"{name} {os.getpid()} {time.time()}\n")
        if name == "step-2" and mode == "first":
            threading.Event().wait(60)  # killed here
        return name + " " * pad

    @app.function(id="crashy")
    def crashy(ctx: stepline.Context[Step]) -> list[str]:
        names = ("step-1", "step-2", "step-3")
        return [ctx.step.run(name, effect, name).rstrip() for name in names]

    settings = EngineSettings(
        worker=WorkerSettings(slots=2, lease_seconds=LEASE_SECONDS, poll_seconds=0.05),
        scheduler_poll_seconds=0.2,
    )
    engine = Engine(app, db=db, settings=settings).start()
    if mode == "first":
        engine.invoke("crashy")
    threading.Event().wait(120)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))

"""An app for a worker process whose `def` step runs until `ctx.cancelled` is set.

Every execution of a step appends `<run id> <step id> <pid> <unix time>` to $SCALE_EFFECTS (the
format `tests.scale.support.read_effects` reads); the `loop` step appends a `stopped` line when
it saw the flag.
"""

from __future__ import annotations

import os
import time

import stepline
from stepline.sdk.step import Step

app = stepline.App("cancel-in-flight")


def record(run_id: str, step_id: str) -> None:
    """Append this execution to the effects file."""
    line = f"{run_id} {step_id} {os.getpid()} {time.time():.6f}\n".encode()
    fd = os.open(os.environ["SCALE_EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@app.function(id="looper", triggers=[stepline.event("cancel/loop")])
def looper(ctx: stepline.Context[Step]) -> None:
    """A step polling until the run is cancelled, then a step that must never start."""

    def loop() -> None:
        record(ctx.run_id, "loop")
        while not ctx.cancelled.wait(0.05):
            pass
        record(ctx.run_id, "stopped")

    ctx.step.run("loop", loop)
    ctx.step.run("after", record, ctx.run_id, "after")

"""An app whose `stuck` step never returns, and a `quick` one, for worker processes in tests.

Every execution of a step appends `<run id> <step id> <pid> <unix time>` to $SCALE_EFFECTS
before doing anything else (the format `tests.scale.support.read_effects` reads).
"""

from __future__ import annotations

import os
import threading
import time

import stepline
from stepline.sdk.step import Step

app = stepline.App("stuck")
NEVER = threading.Event()  # nothing sets it: the step blocks until its process ends


def record(run_id: str, step_id: str) -> None:
    """Append this execution to the effects file."""
    line = f"{run_id} {step_id} {os.getpid()} {time.time():.6f}\n".encode()
    fd = os.open(os.environ["SCALE_EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def block(run_id: str) -> str:
    record(run_id, "block")
    NEVER.wait()
    return "never"


def hello(run_id: str) -> str:
    record(run_id, "hello")
    return "hi"


@app.function(id="stuck", triggers=[stepline.event("stuck/block")])
def stuck(ctx: stepline.Context[Step]) -> str:
    """A step that never returns."""
    return ctx.step.run("block", block, ctx.run_id)


@app.function(id="quick", triggers=[stepline.event("stuck/quick")])
def quick(ctx: stepline.Context[Step]) -> str:
    """One step that returns at once."""
    return ctx.step.run("hello", hello, ctx.run_id)

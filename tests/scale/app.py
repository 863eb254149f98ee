"""The app the scale tests' worker processes run: runs of N steps that leave side effects.

Every execution of a step appends one line, `<run id> <step id> <pid> <unix time>`, to the
file named by $SCALE_EFFECTS (O_APPEND, one write per line) before doing anything else, so the
test counts executions outside the engine. Event data: `steps` (default 5) and `seconds` (how
long each step takes: a number, or a list with one number per step).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import stepline
from stepline.sdk.step import Step

app = stepline.App("scale")


def effect(run_id: str, step_id: str, seconds: float) -> str:
    """Record this execution, then take `seconds`."""
    line = f"{run_id} {step_id} {os.getpid()} {time.time():.6f}\n".encode()
    fd = os.open(os.environ["SCALE_EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    if seconds > 0:
        threading.Event().wait(seconds)
    return step_id


@app.function(id="steps", triggers=[stepline.event("scale/steps")], retries=2)
def steps(ctx: stepline.Context[Step]) -> list[str]:
    """Run `steps` steps named s1, s2, ..., each taking `seconds`."""
    data: dict[str, Any] = ctx.event["data"]
    count = int(data.get("steps", 5))
    seconds = data.get("seconds", 0.0)
    durations = (
        [float(s) for s in seconds] if isinstance(seconds, list) else [float(seconds)] * count
    )
    return [
        ctx.step.run(f"s{i + 1}", effect, ctx.run_id, f"s{i + 1}", durations[i])
        for i in range(count)
    ]

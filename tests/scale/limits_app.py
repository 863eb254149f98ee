"""An app with a per-customer concurrency limit, for worker processes in the scale tests.

Each execution of the `hold` step appends `start <run id> <customer> <pid> <unix time>` to the
file named by $SCALE_EFFECTS before it waits `data.seconds`, and `end ...` after (O_APPEND, one
write per line), so the test sees every execution's interval from outside the engine.
"""

from __future__ import annotations

import os
import threading
import time

import stepline
from stepline.sdk.step import Step

app = stepline.App("limits")
EVENT = "scale/order"
PER_CUSTOMER = 2


def mark(what: str, run_id: str, customer: str) -> None:
    """Append one line about this execution to the effects file."""
    line = f"{what} {run_id} {customer} {os.getpid()} {time.time():.6f}\n".encode()
    fd = os.open(os.environ["SCALE_EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def hold(run_id: str, customer: str, seconds: float) -> str:
    """Take `seconds`, marking the start and the end."""
    mark("start", run_id, customer)
    threading.Event().wait(seconds)
    mark("end", run_id, customer)
    return customer


@app.function(
    id="orders",
    triggers=[stepline.event(EVENT)],
    concurrency=stepline.Concurrency(limit=PER_CUSTOMER, key="event.data.customer"),
)
def orders(ctx: stepline.Context[Step]) -> str:
    """One step lasting `data.seconds`, at most two per customer at once."""
    data = ctx.event["data"]
    return ctx.step.run("hold", hold, ctx.run_id, data["customer"], float(data["seconds"]))

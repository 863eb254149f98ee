"""An app whose runs end (failed or completed) while the scale test kills worker processes, and
whose handlers of those ends count them.

- `doomed` (`def`): steps `first` and `last`, then raises `NonRetriableError` (retries=0);
  `on_failure` handler `doomed-failure`.
- `doomed-async` (`async def`): step `first`, then step `last` raises `NonRetriableError`;
  its `async def` handler `doomed-async-failure`.
- `fine`: steps `first` and `last`, completes.
- `on-finished`: triggered by every `stepline/function.finished`.

The `last` step appends `last <run id> <pid> <unix time>` to $SCALE_EFFECTS (O_APPEND) and then
takes `LAST_STEP_SECONDS`, so the test can kill the process around the run's end. Handlers
return the id of the run whose end they handled.
"""

from __future__ import annotations

import asyncio
import os
import time

import stepline
from stepline.sdk.step import AsyncStep, Step

app = stepline.App("lifecycle")
DOOMED = "scale/doomed"
DOOMED_ASYNC = "scale/doomed-async"
FINE = "scale/fine"
FIRST_STEP_SECONDS = 0.05
LAST_STEP_SECONDS = 0.02


def mark(run_id: str) -> None:
    """Append this execution of the last step to the effects file."""
    line = f"last {run_id} {os.getpid()} {time.time():.6f}\n".encode()
    fd = os.open(os.environ["SCALE_EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def first() -> str:
    """Some work before the last step."""
    time.sleep(FIRST_STEP_SECONDS)
    return "first"


def last(run_id: str) -> str:
    """Mark, then take a moment."""
    mark(run_id)
    time.sleep(LAST_STEP_SECONDS)
    return "last"


async def last_failing(run_id: str) -> str:
    """Mark, take a moment, then fail for good."""
    mark(run_id)
    await asyncio.sleep(LAST_STEP_SECONDS)
    raise stepline.NonRetriableError("the last step fails for good")


def handled(ctx: stepline.Context[Step]) -> str:
    """The id of the run whose end this handler run handles."""
    return str(ctx.event["data"]["run_id"])


async def handled_async(ctx: stepline.Context[AsyncStep]) -> str:
    """`handled`, as an `async def` function."""
    return str(ctx.event["data"]["run_id"])


@app.function(id="doomed", triggers=[stepline.event(DOOMED)], retries=0, on_failure=handled)
def doomed(ctx: stepline.Context[Step]) -> None:
    """Two steps, then a failure for good."""
    ctx.step.run("first", first)
    ctx.step.run("last", last, ctx.run_id)
    raise stepline.NonRetriableError("the function fails for good after its steps")


@app.function(
    id="doomed-async",
    triggers=[stepline.event(DOOMED_ASYNC)],
    retries=0,
    on_failure=handled_async,
)
async def doomed_async(ctx: stepline.Context[AsyncStep]) -> None:
    """Its last step fails for good."""
    await ctx.step.run("first", first)
    await ctx.step.run("last", last_failing, ctx.run_id)


@app.function(id="fine", triggers=[stepline.event(FINE)])
def fine(ctx: stepline.Context[Step]) -> list[str]:
    """Two steps, completed."""
    return [ctx.step.run("first", first), ctx.step.run("last", last, ctx.run_id)]


@app.function(id="on-finished", triggers=[stepline.event("stepline/function.finished")])
def on_finished(ctx: stepline.Context[Step]) -> str:
    """Count a run's end."""
    return handled(ctx)

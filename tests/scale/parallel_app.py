"""An app whose runs split into two `step.parallel` branches, for worker processes in the scale
tests; `pair` is a `def` function, `pair-async` the same as `async def`.

Each execution of a branch's step appends `start <tag> <step> <pid> <unix time>` to the file
named by $SCALE_EFFECTS, then `fail ...` (and raises) or `end ...` after waiting `data.seconds`
(O_APPEND, one write per line), so the test sees every execution's process and interval from
outside the engine. The step named by `data.flaky` fails its first execution (of that tag).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

import stepline
from stepline.sdk.step import AsyncStep, Step

app = stepline.App("parallel")
EVENT = "scale/pair"
ASYNC_EVENT = "scale/pair-async"


def mark(what: str, tag: str, step: str) -> None:
    """Append one line about this execution to the effects file."""
    line = f"{what} {tag} {step} {os.getpid()} {time.time():.6f}\n".encode()
    fd = os.open(os.environ["SCALE_EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def first_execution(tag: str, step: str) -> bool:
    """True the first time it is asked for this tag and step, in any process."""
    marker = f"{os.environ['SCALE_EFFECTS']}.{tag}.{step}.tried"
    try:
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        return False
    return True


def begin(data: dict[str, Any], step: str) -> None:
    """Mark the start; fail if `step` is the flaky one and this is its first execution."""
    mark("start", str(data["tag"]), step)
    if data.get("flaky") == step and first_execution(str(data["tag"]), step):
        mark("fail", str(data["tag"]), step)
        raise RuntimeError(f"{step} fails its first attempt")


def work(data: dict[str, Any], step: str) -> str:
    """Take `data.seconds`, marking the start and the end."""
    begin(data, step)
    threading.Event().wait(float(data["seconds"]))
    mark("end", str(data["tag"]), step)
    return f"{step} done"


async def work_async(data: dict[str, Any], step: str) -> str:
    """`work`, waiting on the event loop."""
    begin(data, step)
    await asyncio.sleep(float(data["seconds"]))
    mark("end", str(data["tag"]), step)
    return f"{step} done"


@app.function(id="pair", triggers=[stepline.event(EVENT)], retries=2)
def pair(ctx: stepline.Context[Step]) -> list[str]:
    """Steps `a` and `b` in two branches at once."""
    data = ctx.event["data"]
    return ctx.step.parallel(
        "pair",
        [lambda: ctx.step.run("a", work, data, "a"), lambda: ctx.step.run("b", work, data, "b")],
    )


@app.function(id="pair-async", triggers=[stepline.event(ASYNC_EVENT)], retries=2)
async def pair_async(ctx: stepline.Context[AsyncStep]) -> list[str]:
    """`pair` as an `async def` function."""
    data = ctx.event["data"]
    return await ctx.step.parallel(
        "pair",
        [
            lambda: ctx.step.run("a", work_async, data, "a"),
            lambda: ctx.step.run("b", work_async, data, "b"),
        ],
    )

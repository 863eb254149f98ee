"""The app `stepline dev` serves in the CLI tests: echo, a flaky step, progress, a long sleep,
two functions started by one event, and flow-control options."""

from __future__ import annotations

import time
from typing import Any

import stepline
from stepline.sdk.step import Step

app = stepline.App("cli-tests")

# Calls of the flaky step per run; `stepline dev` runs every replay in this one process.
_fetch_calls: dict[str, int] = {}


@app.function(id="echo", triggers=[stepline.event("cli/echo"), stepline.event("cli/pair")])
def echo(ctx: stepline.Context[Step]) -> dict[str, Any]:
    """Return the event data it received."""
    data: dict[str, Any] = ctx.event["data"]
    return data


@app.function(id="flaky", triggers=[stepline.event("cli/flaky")], retries=3)
def flaky(ctx: stepline.Context[Step]) -> str:
    """Log a line; step "fetch" fails its first attempt with a short retry delay."""

    def fetch() -> str:
        _fetch_calls[ctx.run_id] = _fetch_calls.get(ctx.run_id, 0) + 1
        if _fetch_calls[ctx.run_id] == 1:
            raise stepline.RetryAfterError("vendor API answered 429", delay=0.1)
        return "ok"

    prepared = ctx.step.run("prepare", lambda: 1)
    ctx.log.info("prepared %s", prepared)
    return ctx.step.run("fetch", fetch)


@app.function(id="broken", retries=0)
def broken(ctx: stepline.Context[Step]) -> None:
    """Fail at once (invoke only)."""
    raise stepline.NonRetriableError("the vendor account is closed")


@app.function(id="refuser", retries=0, triggers=[stepline.event("cli/pair")])
def refuser(ctx: stepline.Context[Step]) -> None:
    """Fail at once, next to `echo`, which the same event starts."""
    raise stepline.NonRetriableError("refused")


@app.function(id="slow", triggers=[stepline.event("cli/slow")])
def slow(ctx: stepline.Context[Step]) -> int:
    """Process five items in steps of `pause` seconds (0.1), reporting progress and a counter."""
    total = 5
    pause = float(ctx.event["data"].get("pause", 0.1))
    for i in range(total):
        ctx.step.run(f"item-{i}", time.sleep, pause)
        ctx.progress(i + 1, total, f"item {i + 1} of {total}")
        ctx.count("processed")
    return total


@app.function(
    id="nightly",
    triggers=[stepline.cron("0 0 * * *", tz="Africa/Johannesburg"), stepline.event("cli/night")],
)
def nightly(ctx: stepline.Context[Step]) -> None:
    """Do nothing, on a schedule."""


@app.function(id="sleeper", triggers=[stepline.event("cli/sleeper")])
def sleeper(ctx: stepline.Context[Step]) -> str:
    """Sleep for an hour, durably."""
    ctx.step.run("before", lambda: None)
    ctx.step.sleep("nap", "1h")
    return "woke"


# No keys or conditions: they are CEL, whose library would slow this server's start by 0.5 s.
@app.function(
    id="limited",
    triggers=[stepline.event("cli/limited")],
    concurrency=2,
    throttle=stepline.Throttle(limit=10, period="1m", burst=2),
    singleton=stepline.Singleton(mode="skip"),
    cancel_on=stepline.CancelOn("cli/limited.cancelled", timeout="1d"),
    timeouts=stepline.Timeouts(start="5m"),
)
def limited(ctx: stepline.Context[Step]) -> None:
    """Sleep for an hour, within flow-control limits: one at a time, cancelled by an event."""
    ctx.step.sleep("nap", "1h")

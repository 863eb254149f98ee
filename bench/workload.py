"""The benchmark's functions: W1 (three no-op steps) and W2 (one step that stamps its start).

Imported by `run.py` (in-process engine) and `engine_proc.py` (engine in a child process).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import stepline

W1_EVENT = "bench/w1.requested"
W2_EVENT = "bench/w2.requested"

app = stepline.App("bench")

# In-process W2 probes read the step's start time here instead of polling the database.
started: dict[int, float] = {}
started_cond = threading.Condition()


def noop(run: int, step: int) -> dict[str, Any]:
    """The W1 step body: no I/O, a small dict (the peers' body: run, step, t)."""
    return {"run": run, "step": step, "t": time.time()}


def stamp(seq: int) -> dict[str, Any]:
    """The W2 step body: record when it started, in memory and in its output."""
    now = time.time()
    with started_cond:
        started[seq] = now
        started_cond.notify_all()
    return {"seq": seq, "t": now}


def wait_started(seq: int, timeout_s: float = 10.0) -> float:
    """When W2 run `seq`'s step started (in-process engines); `TimeoutError` after `timeout_s`."""
    with started_cond:
        if not started_cond.wait_for(lambda: seq in started, timeout=timeout_s):
            raise TimeoutError(f"W2 run {seq} did not start in {timeout_s:g} s")
        return started.pop(seq)


@app.function(id="w1-three-steps", triggers=[stepline.event(W1_EVENT)], retries=0)
def three_steps(ctx: stepline.Context[Any]) -> None:
    run = int(ctx.event["data"]["i"])
    ctx.step.run("s1", noop, run, 1)
    ctx.step.run("s2", noop, run, 2)
    ctx.step.run("s3", noop, run, 3)


@app.function(id="w2-first-step", triggers=[stepline.event(W2_EVENT)], retries=0)
def first_step(ctx: stepline.Context[Any]) -> None:
    ctx.step.run("stamp", stamp, int(ctx.event["data"]["seq"]))


STORM_EVENT = "bench/storm.requested"


@app.function(id="storm-sleeper", triggers=[stepline.event(STORM_EVENT)], retries=0)
def storm_sleeper(ctx: stepline.Context[Any]) -> None:
    """The wake-up storm: sleep until the instant in the event (the same for every run), then
    one step."""
    ctx.step.sleep_until("until", datetime.fromtimestamp(float(ctx.event["data"]["at"]), UTC))
    ctx.step.run("woke", noop, int(ctx.event["data"]["i"]), 1)

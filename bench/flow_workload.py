"""The flow part's functions: W1 plain, with a concurrency key, with a cancel_on listener.

One `App` per variant, so that each variant's engine or worker serves just its own function.
`listener_app` is for the intake probe: its runs are created (and listen) but never executed.
Imported only by the flow part (these options do not exist in older versions of Stepline).
"""

from __future__ import annotations

from typing import Any

from workload import noop

import stepline

W1_EVENT = "bench/w1-flow.requested"
LISTEN_EVENT = "bench/listen.requested"
CANCEL_EVENT = "bench/cancel"
KEYS = 50  # W1 events are spread over data.k = 0..KEYS-1
CONCURRENCY = stepline.Concurrency(limit=4, key="event.data.k")
CANCEL_ON = stepline.CancelOn(CANCEL_EVENT, match="data.k")


def three_steps(ctx: stepline.Context[Any]) -> None:
    """W1's body: three no-op steps."""
    run = int(ctx.event["data"]["i"])
    ctx.step.run("s1", noop, run, 1)
    ctx.step.run("s2", noop, run, 2)
    ctx.step.run("s3", noop, run, 3)


def idle(ctx: stepline.Context[Any]) -> None:
    """The listener's body (never executed: the probe registers it without a worker)."""


plain_app = stepline.App("bench-flow-plain")
plain_app.function(id="w1-plain", triggers=[stepline.event(W1_EVENT)], retries=0)(three_steps)

concurrency_app = stepline.App("bench-flow-concurrency")
concurrency_app.function(
    id="w1-concurrency",
    triggers=[stepline.event(W1_EVENT)],
    retries=0,
    concurrency=CONCURRENCY,
)(three_steps)

cancel_on_app = stepline.App("bench-flow-cancel-on")
cancel_on_app.function(
    id="w1-cancel-on", triggers=[stepline.event(W1_EVENT)], retries=0, cancel_on=CANCEL_ON
)(three_steps)

listener_app = stepline.App("bench-flow-listener")
listener_app.function(
    id="listener", triggers=[stepline.event(LISTEN_EVENT)], retries=0, cancel_on=CANCEL_ON
)(idle)

# variant -> the attribute of its App in this module (`stepline worker flow_workload.py:ATTR`)
VARIANTS = {"plain": "plain_app", "concurrency": "concurrency_app", "cancel_on": "cancel_on_app"}

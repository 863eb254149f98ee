"""A completed step is never executed again: when a later step fails, the run replays from the
top and the earlier step's stored result is returned instead of calling it a second time."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step
from tests.engine.support import drive, start

EVENT = "case/checkout"


def charge(calls: Counter[str]) -> str:
    calls["charge"] += 1
    return "ch_1"


def send_receipt(calls: Counter[str]) -> str:
    calls["receipt"] += 1
    if calls["receipt"] == 1:
        raise ConnectionError("smtp down")
    return "sent"


def sync_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="checkout", triggers=[stepline.event(EVENT)])
    def checkout(ctx: stepline.Context[Step]) -> dict[str, str]:
        charged = ctx.step.run("charge-card", charge, calls)
        receipt = ctx.step.run("send-receipt", send_receipt, calls)
        return {"charged": charged, "receipt": receipt}

    return app


def async_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    async def charge_async(calls: Counter[str]) -> str:
        await asyncio.sleep(0)
        return charge(calls)

    @app.function(id="checkout", triggers=[stepline.event(EVENT)])
    async def checkout(ctx: stepline.Context[AsyncStep]) -> dict[str, str]:
        charged = await ctx.step.run("charge-card", charge_async, calls)
        receipt = await ctx.step.run("send-receipt", send_receipt, calls)
        return {"charged": charged, "receipt": receipt}

    return app


@pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])
def test_completed_step_is_not_rerun_when_a_later_step_fails(
    build: Callable[[Counter[str]], stepline.App],
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    calls: Counter[str] = Counter()
    engine = make_engine(build(calls))
    run_id = start(engine, EVENT)

    run = drive(engine, clock, run_id)

    assert run.status == "COMPLETED", run.error
    assert json.loads(run.output or "") == {"charged": "ch_1", "receipt": "sent"}
    assert calls == Counter(charge=1, receipt=2)
    detail = engine.get_run(run_id)
    assert [(s.id, s.status, s.attempts) for s in detail.steps] == [
        ("charge-card", "completed", 1),
        ("send-receipt", "completed", 2),
    ]
    assert [a.step_id for a in detail.attempts] == ["send-receipt"]

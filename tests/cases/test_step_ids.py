"""Step ids are stored and hashed as Inngest hashes them: SHA-1 of the id, and a repeated id
becomes "id:1", "id:2", ... so each repeat is memoized separately across replays."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step, hash_step_id
from tests.engine.support import drive, start

EVENT = "case/repeat"


def numbered(calls: Counter[str], n: int) -> int:
    calls[f"n{n}"] += 1
    return n * 10


def fails_once(calls: Counter[str]) -> str:
    calls["last"] += 1
    if calls["last"] == 1:
        raise RuntimeError("first try fails")
    return "ok"


def sync_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="repeat", triggers=[stepline.event(EVENT)])
    def repeat(ctx: stepline.Context[Step]) -> list[int]:
        values = [ctx.step.run("my-step-id", numbered, calls, n) for n in range(3)]
        ctx.step.run("last", fails_once, calls)
        return values

    return app


def async_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="repeat", triggers=[stepline.event(EVENT)])
    async def repeat(ctx: stepline.Context[AsyncStep]) -> list[int]:
        values = [await ctx.step.run("my-step-id", numbered, calls, n) for n in range(3)]
        await ctx.step.run("last", fails_once, calls)
        return values

    return app


def test_step_id_hash_is_sha1_of_the_id() -> None:
    assert hash_step_id("my-step-id") == "e7d8a2f140845095749d60246ff1110c9d01d76a"
    assert hash_step_id("my-step-id:1") == "f47c6228c581af870aa285200cf95ec3ac59bb6a"


@pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])
def test_repeated_step_ids_get_a_counter_suffix_and_are_memoized_each(
    build: Callable[[Counter[str]], stepline.App],
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    calls: Counter[str] = Counter()
    engine = make_engine(build(calls))
    run_id = start(engine, EVENT)

    run = drive(engine, clock, run_id)

    assert run.status == "COMPLETED", run.error
    assert json.loads(run.output or "") == [0, 10, 20]
    assert calls == Counter(n0=1, n1=1, n2=1, last=2)
    steps = engine.get_run(run_id).steps
    assert [(s.id, s.hash, s.position) for s in steps] == [
        ("my-step-id", "e7d8a2f140845095749d60246ff1110c9d01d76a", 0),
        ("my-step-id:1", "f47c6228c581af870aa285200cf95ec3ac59bb6a", 1),
        ("my-step-id:2", hashlib.sha1(b"my-step-id:2").hexdigest(), 2),
        ("last", hashlib.sha1(b"last").hexdigest(), 3),
    ]
    assert [json.loads(s.output or "") for s in steps[:3]] == [0, 10, 20]

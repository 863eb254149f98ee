"""Blocking code (the in-process Client, the test kit) runs coroutines whether or not the
calling thread already has an event loop running: a notebook, an async web app, Playwright."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from stepline._blocking import run_to_end


async def _answer() -> int:
    await asyncio.sleep(0)
    return 42


async def _fails() -> None:
    raise ValueError("inside the coroutine")


def test_runs_a_coroutine_from_plain_code() -> None:
    assert run_to_end(_answer()) == 42


def test_runs_a_coroutine_from_inside_a_running_loop() -> None:
    async def caller() -> int:
        return run_to_end(_answer())  # asyncio.run would refuse here

    # The caller's loop runs in a thread of its own: this test's thread may have one already.
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(asyncio.run, caller()).result(timeout=10) == 42


def test_the_coroutines_exception_reaches_the_caller() -> None:
    with pytest.raises(ValueError, match="inside the coroutine"):
        run_to_end(_fails())

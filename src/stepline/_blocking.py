"""Run a coroutine to its end from blocking code, whether or not the caller's thread has a loop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_to_end(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` on a loop of its own in a thread of its own; return its result.

    The calling thread may have an event loop running already (a notebook, an async web app,
    Playwright's sync API), where `asyncio.run` is refused.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stepline-blocking") as pool:
        return pool.submit(asyncio.run, coroutine).result()

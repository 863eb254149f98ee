"""No store method holds one pooled connection while taking another: many concurrent
event-filtered run queries (the API's `?event_id=`, an event's runs, the dashboard's event page)
and event intake all answer, instead of every pooled connection waiting for a second one."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

import pytest

from stepline.engine.events import build_event
from stepline.engine.routing import Routing
from stepline.store._nesting import NestedConnectionError
from stepline.store.base import FunctionRecord, RunFilter, Store
from stepline.store.sql import SqlStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CALLERS = 50
QUERIES_EACH = 4
INTAKE_THREADS = 4
EVENTS_EACH = 10
# Far above what these queries need; the pool timeouts are 60 s (PostgreSQL) and 600 s (SQLite).
ANSWER_SECONDS = 30.0


def _send(store: Store, name: str = "order.placed") -> str:
    [event_id] = store.ingest_events([build_event({"name": name}, now=T0)], Routing(), T0)
    return event_id


def _run_all(jobs: list[Callable[[], None]]) -> tuple[list[BaseException], int]:
    """Start every job at once (daemon threads); the errors, and how many are still running
    after `ANSWER_SECONDS`."""
    start = threading.Barrier(len(jobs))
    failures: list[BaseException] = []

    def run(job: Callable[[], None]) -> None:
        start.wait()
        try:
            job()
        except BaseException as exc:  # reported by the test
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(job,), daemon=True) for job in jobs]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + ANSWER_SECONDS
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return failures, sum(thread.is_alive() for thread in threads)


def test_concurrent_event_filtered_run_queries_and_intake_all_answer(store: Store) -> None:
    config = {"triggers": [{"event": "order.placed"}]}
    fn = FunctionRecord(id="fulfil", app_id="shop", name="fulfil", config=json.dumps(config))
    store.sync_functions("shop", [fn], T0)
    event_id = _send(store)
    [run] = store.list_runs(RunFilter(event_id=event_id))
    answers: list[list[str]] = []

    def query(ids_only: bool) -> None:
        for _ in range(QUERIES_EACH):
            if ids_only:
                answers.append(store.list_run_ids(RunFilter(event_id=event_id)))
            else:
                answers.append([r.id for r in store.list_runs(RunFilter(event_id=event_id))])

    def intake() -> None:
        for _ in range(EVENTS_EACH):
            _send(store, "order.noted")

    jobs: list[Callable[[], None]] = [partial(query, i % 2 == 1) for i in range(CALLERS)]
    jobs += [intake] * INTAKE_THREADS
    failures, stuck = _run_all(jobs)

    assert stuck == 0, f"{stuck} of {len(jobs)} callers had no answer after {ANSWER_SECONDS:g}s"
    assert failures == []
    assert answers == [[run.id]] * (CALLERS * QUERIES_EACH)
    assert len(store.list_events("order.noted", 1000, None)) == INTAKE_THREADS * EVENTS_EACH


def test_a_store_method_nested_in_a_held_connection_fails_at_once(store: Store) -> None:
    assert isinstance(store, SqlStore)
    with store._read(), pytest.raises(NestedConnectionError):
        store.list_functions()
    assert store.list_functions() == [], "the guard released the connection it refused"

"""Workers of one app starting at the same moment all register: concurrent registrations of the
same new functions (and the same new app) do not fail each other (on PostgreSQL two
transactions can both find no row to update and both insert it)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from stepline import errors
from stepline.store import open_store
from stepline.store.base import FunctionRecord, Store
from tests.scale.support import database_of

ROUNDS = 30
PROCESSES = 4


@pytest.mark.timeout(60)
def test_concurrent_registrations_of_the_same_new_functions_all_succeed(store: Store) -> None:
    # One store per would-be worker process: separate connections, separate transactions.
    stores = [open_store(database_of(store)) for _ in range(PROCESSES)]
    barrier = threading.Barrier(PROCESSES)
    failures: list[BaseException] = []
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def register(own: Store) -> None:
        for round_ in range(ROUNDS):
            functions = [
                FunctionRecord(
                    id=f"fn-{round_}-{i}", app_id=f"app-{round_}", name=f"fn {i}", config="{}"
                )
                for i in range(3)
            ]
            barrier.wait(10)
            try:
                own.sync_functions(f"app-{round_}", functions, now)
            except errors.StoreError as exc:
                failures.append(exc)

    threads = [threading.Thread(target=register, args=(own,)) for own in stores]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(50)
    finally:
        for own in stores:
            own.close()
    assert failures == []
    assert len(store.list_functions()) == ROUNDS * 3
    assert len(store.list_apps()) == ROUNDS

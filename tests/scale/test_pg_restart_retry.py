"""After a PostgreSQL restart, the first hot-path transaction of a store that was already in use
succeeds: its pooled connection, closed by the restart, is found broken at BEGIN and replaced,
instead of failing event intake with a 503 or a worker's commit (its step then run again)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from stepline.engine.events import build_event
from stepline.engine.routing import Routing
from stepline.store.base import FunctionRecord, RunDelta, RunFilter, StepRecord
from stepline.store.postgres import PostgresStore
from tests.scale.pg_cluster import ThrowawayPostgres

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EVENT = "order.placed"
LEASE_SECONDS = 600.0
FULFIL = FunctionRecord(
    id="fulfil",
    app_id="shop",
    name="fulfil",
    config=json.dumps({"triggers": [{"event": EVENT}]}),
)


@pytest.fixture
def stores(own_postgres: ThrowawayPostgres) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    """A server's store and a worker's store on the throwaway database, migrated."""
    intake, worker = PostgresStore(own_postgres.url), PostgresStore(own_postgres.url)
    try:
        intake.upgrade()
        intake.sync_functions("shop", [FULFIL], T0)
        yield intake, worker
    finally:
        intake.close()
        worker.close()


def send(store: PostgresStore) -> str:
    [event_id] = store.ingest_events([build_event({"name": EVENT}, now=T0)], Routing(), T0)
    return event_id


def step(run_id: str) -> StepRecord:
    return StepRecord(
        run_id=run_id,
        hash="charge".ljust(40, "0"),
        id="charge",
        kind="run",
        status="completed",
        position=0,
        started_at=T0,
        ended_at=T0,
        output='"charged"',
    )


@pytest.mark.slow
def test_the_first_intake_and_worker_transactions_after_a_restart_succeed(
    own_postgres: ThrowawayPostgres, stores: tuple[PostgresStore, PostgresStore]
) -> None:
    intake, worker = stores
    first = send(intake)  # each store now has a pooled connection the restart will close
    [claimed] = worker.claim_runs("worker", 10, T0, LEASE_SECONDS, ["fulfil"])

    own_postgres.restart()
    second = send(intake)
    worker.commit_step(claimed.lease, step(claimed.run.id), RunDelta(), T0)

    assert [run.function_id for run in intake.list_runs(RunFilter(event_id=second))] == ["fulfil"]
    assert [s.id for s in intake.get_steps(claimed.run.id)] == ["charge"]
    assert claimed.run.event_ids == (first,)

    own_postgres.restart()
    [next_claim] = worker.claim_runs("worker", 10, T0, LEASE_SECONDS, ["fulfil"])
    assert next_claim.run.event_ids == (second,)


@pytest.mark.slow
def test_the_first_credential_read_after_a_restart_succeeds(
    own_postgres: ThrowawayPostgres, stores: tuple[PostgresStore, PostgresStore]
) -> None:
    """Intake reads its event key on the hot pool's connections, once more after a restart."""
    intake, _ = stores
    unknown = "0" * 64
    assert intake.credential_and_others("key", unknown) == (None, False)  # a pooled connection

    own_postgres.restart()

    assert intake.credential_and_others("key", unknown) == (None, False)
    assert intake.credential_by_hash("token", unknown) is None

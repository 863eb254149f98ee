"""Why an active run is not executing, in words: a slot, a limit, a child, or no worker.

Parked runs say it with their detail code (SLEEPING, THROTTLED, INVOKING, ...); a run held
back by a full concurrency key, or one that no live worker serves, is found from the queue
and the workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from stepline._flow_keys import key_value
from stepline.engine.inngest.functions import sdk_target
from stepline.store.base import ACTIVE_STATUSES, RunRecord, Store

# A run queued this long with no live worker serving its function is flagged.
UNSERVED_AFTER = timedelta(seconds=10)
DETAILS = {
    "SLEEPING": "sleeping",
    "WAITING": "waiting for an event",
    "RETRYING": "waiting to retry after a failure",
    "THROTTLED": "delayed by its throttle",
    "DEBOUNCING": "debouncing: waiting for further events",
    "BATCHING": "batching: waiting for more events",
    "INVOKING": "waiting for the run it invoked",
    "PARALLEL": "waiting for its parallel branches",
}


def sdk_functions(store: Store) -> set[str]:
    """The ids of the registry's SDK app functions."""
    return {fn.id for fn in store.list_functions() if sdk_target(fn) is not None}


def waiting_reasons(store: Store, runs: Sequence[RunRecord], now: datetime) -> dict[str, str]:
    """Per active run id, why it is not executing (runs executing have no entry)."""
    active = [run for run in runs if run.status in ACTIVE_STATUSES]
    if not active:
        return {}
    reasons = {
        run_id: f"waiting for concurrency slot: key={key_value(key) or '(function-wide)'}"
        for run_id, key in store.slot_waits([run.id for run in active], now).items()
    }
    workers = [w for w in store.list_workers() if w.alive(now)]
    served = {fn for worker in workers for fn in worker.functions}
    lease = max((3 * w.heartbeat_seconds for w in workers), default=UNSERVED_AFTER.total_seconds())
    if workers and any(run.function_id not in served for run in active):
        served |= sdk_functions(store)  # every worker calls SDK apps
    for run in active:
        if run.id in reasons:
            continue
        queued_for = (now - run.created_at).total_seconds()
        if run.status == "QUEUED" and run.function_id not in served and queued_for > lease:
            reasons[run.id] = f"no live worker serves function {run.function_id!r}"
        elif run.detail in DETAILS:
            reasons[run.id] = DETAILS[run.detail]
    return reasons

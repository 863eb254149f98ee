"""What the SDK-facing endpoints read: a run by its id, its steps, its events as SDKs see them."""

from __future__ import annotations

from typing import Any

from ulid import ULID

from stepline import errors
from stepline.engine.inngest.names import to_inngest
from stepline.store.base import RunRecord, StepRecord, Store


def parse_run_id(value: str, field: str) -> str:
    """A run id in its stored form (run ids are ULIDs, upper case).

    Raises:
        InvalidInput: `value` is not a ULID; the field is `field`.
    """
    try:
        return str(ULID.from_str(value))
    except ValueError:
        raise errors.InvalidInput("must be a run id (a ULID)", field) from None


def run_steps(store: Store, run: RunRecord) -> list[StepRecord]:
    """The steps the run's code replays; a parallel branch's are its parent's (`RunSession`)."""
    branch = run.trigger_kind == "parallel" and run.parent_step is not None
    return store.get_steps((run.parent_run_id or run.id) if branch else run.id)


def sdk_events(store: Store, run: RunRecord) -> list[dict[str, Any]]:
    """The run's trigger events as SDKs see them: `{id, name, data, user, ts}`, in order."""
    events = [event.payload() for event in store.get_events(run.event_ids)]
    return [{**event, "name": to_inngest(event["name"])} for event in events]

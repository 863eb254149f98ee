"""`ctx.trigger` from a stored run: how it was started, by whom, and a cron run's tick."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from stepline.engine.events import CRON_EVENT
from stepline.sdk.event import Event, RunTrigger
from stepline.store.base import TriggerKind


def run_trigger(kind: TriggerKind, by: str | None, events: Sequence[Event]) -> RunTrigger:
    """The trigger of a run that is not a parallel branch (see `RunTrigger` for `by`).

    Args:
        kind: The run's stored `trigger_kind` (a branch's: its parent run's).
        by: The run's stored `trigger_by`.
        events: Its events as the function sees them; a cron run's tick event gives
            `scheduled_at`.
    """
    if kind == "parallel":
        raise ValueError("a parallel branch reports its parent run's trigger")
    if kind == "cron":
        return RunTrigger(kind="cron", by=by, scheduled_at=_tick(events))
    return RunTrigger(kind=kind, by=by)


def _tick(events: Sequence[Event]) -> datetime | None:
    """The tick a cron run was scheduled for, from its `stepline/scheduled.timer` event."""
    tick = next((event for event in events if event.name == CRON_EVENT), None)
    scheduled = tick.data.get("scheduled_at") if tick is not None else None
    try:
        return datetime.fromisoformat(scheduled) if isinstance(scheduled, str) else None
    except ValueError:
        return None

"""Which functions an event starts, and what it resumes or cancels: asked by the store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from stepline._cel import FailureLog, matches
from stepline.engine.admission import Admission, function_config
from stepline.engine.events import new_id
from stepline.engine.lifecycle import lifecycle_events
from stepline.store.base import (
    EventRecord,
    FunctionRecord,
    NewRun,
    RunEnd,
    TriggerKind,
    WaitRecord,
)

DRY_RUN_KEY = "stepline/dry_run"  # an event whose data holds it true starts dry runs


def asks_dry_run(event: EventRecord) -> bool:
    """Whether the event asks for dry runs (`"stepline/dry_run": true` in its data)."""
    return DRY_RUN_KEY in event.data and json.loads(event.data).get(DRY_RUN_KEY) is True


def name_matches(pattern: str, name: str) -> bool:
    """Exact match, or a trailing "/*" or ".*" wildcard matching everything under a prefix."""
    if pattern.endswith(("/*", ".*")):
        return name.startswith(pattern[:-1])
    return pattern == name


class Routing:
    """The engine's answers to `EventRouting`, built from the stored function registry."""

    def __init__(self) -> None:
        self.failures = FailureLog()
        self.admission = Admission(self.failures)

    def new_run(
        self,
        function_id: str,
        config: str,
        *,
        kind: TriggerKind,
        events: Sequence[EventRecord],
        now: datetime,
        trigger_by: str | None = None,
        replay_of: str | None = None,
        idempotency_key: str | None = None,
        parent: tuple[str, str] | None = None,
        dry_run: bool = False,
    ) -> NewRun:
        """A run of the function for `events`, with its flow control planned.

        A dry run is asked for with `dry_run`, or by its first event's `data` holding
        `"stepline/dry_run": true`.
        """
        options = function_config(config)
        return NewRun(
            id=new_id(),
            function_id=function_id,
            trigger_kind=kind,
            trigger_by=trigger_by,
            event_ids=tuple(event.internal_id for event in events),
            replay_of=replay_of,
            idempotency_key=idempotency_key,
            timeout_seconds=options.get("timeout_seconds"),
            flow=self.admission.plan(
                function_id, options, kind=kind, event=events[0] if events else None, now=now
            ),
            parent_run_id=parent[0] if parent else None,
            parent_step=parent[1] if parent else None,
            dry_run=dry_run or (bool(events) and asks_dry_run(events[0])),
        )

    def runs_for(self, event: EventRecord, functions: Sequence[FunctionRecord]) -> list[NewRun]:
        """One run per function with a matching event trigger (once, however many match)."""
        runs: list[NewRun] = []
        payload: dict[str, Any] | None = None
        for fn in functions:
            for trigger in function_config(fn.config)["triggers"]:
                pattern = trigger.get("event")
                if pattern is None or not name_matches(pattern, event.name):
                    continue
                condition = trigger.get("if")
                if condition:
                    payload = payload or event.payload()
                    where = f"function {fn.id!r} trigger {pattern!r}"
                    if not matches(
                        condition, {"event": payload}, where=where, failures=self.failures
                    ):
                        continue
                runs.append(
                    self.new_run(
                        fn.id,
                        fn.config,
                        kind="event",
                        events=(event,),
                        now=event.received_at,
                        trigger_by=event.sent_by,
                    )
                )
                break
        return runs

    def triggers_on(self, name: str, functions: Sequence[FunctionRecord]) -> bool:
        """Whether any of `functions` has a trigger for events named `name`."""
        return any(
            name_matches(trigger["event"], name)
            for fn in functions
            for trigger in function_config(fn.config)["triggers"]
            if "event" in trigger
        )

    def lifecycle_events(
        self, ended: RunEnd, events: Sequence[EventRecord], names: Sequence[str], now: datetime
    ) -> list[EventRecord]:
        """The system events announcing a run's end (see `lifecycle`)."""
        return lifecycle_events(ended, events, names, now)

    def wait_matches(
        self, wait: WaitRecord, event: EventRecord, trigger: EventRecord | None
    ) -> bool:
        """True if `event` satisfies the wait's CEL condition (`event` = trigger, `async`)."""
        where = f"run {wait.run_id} wait_for_event({wait.event_name!r})"
        return self.condition_holds(wait.expression, event, trigger, where=where)

    def condition_holds(
        self, expression: str | None, event: EventRecord, trigger: EventRecord | None, *, where: str
    ) -> bool:
        """True if `expression` (none: always) holds with `event` = trigger, `async` = event."""
        if not expression:
            return True
        variables = {
            "event": trigger.payload() if trigger else {},
            "async": event.payload(),
        }
        return matches(expression, variables, where=where, failures=self.failures)

"""What clients, the server and the CLI do to the engine's state: send, invoke, cancel, replay.

Needs only a store: routing reads the function registry, so a process without the app's code
(a client, the server) can accept events and start runs that workers elsewhere execute.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stepline import errors
from stepline.engine.clock import Clock, SystemClock
from stepline.engine.events import build_event, build_events, new_id
from stepline.engine.routing import Routing
from stepline.store.base import (
    AttemptRecord,
    EventRecord,
    FunctionRecord,
    LogRecord,
    NewRun,
    RunFilter,
    RunRecord,
    StepRecord,
    Store,
)

INVOKED_EVENT = "stepline/function.invoked"


@dataclass(frozen=True, kw_only=True)
class RunDetail:
    """A run with its steps, failed attempts and log lines."""

    run: RunRecord
    steps: list[StepRecord]
    attempts: list[AttemptRecord]
    logs: list[LogRecord]


class Operations:
    """Commands and queries over a store, shared by `Engine`, `Client.local` and the server."""

    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.routing = Routing()

    def send(self, events: Any) -> list[str]:
        """Validate and store one event or a list; returns their ids (all or nothing)."""
        now = self.clock.now()
        records = build_events(events, now=now)
        return self.store.ingest_events(records, self.routing, now)

    def function(self, function_id: str) -> FunctionRecord:
        """A registered function; raises `NotFound` naming the known ones."""
        functions = self.store.list_functions()
        for fn in functions:
            if fn.id == function_id:
                return fn
        known = ", ".join(fn.id for fn in functions) or "none registered"
        raise errors.NotFound(f"unknown function {function_id!r} (known: {known})")

    def invoke(
        self, function_id: str, data: dict[str, Any] | None = None, *, by: str | None = None
    ) -> str:
        """Start a run of `function_id` now with `data` as its event data; returns the run id."""
        fn = self.function(function_id)
        if data is not None and not isinstance(data, dict):
            raise errors.InvalidInput("must be a JSON object", "data")
        now = self.clock.now()
        event = build_event(
            {"name": INVOKED_EVENT, "data": data or {}},
            now=now,
            source="manual",
            internal=True,
        )
        run = NewRun(
            id=new_id(),
            function_id=fn.id,
            trigger_kind="manual",
            trigger_by=by,
            event_ids=(event.internal_id,),
            timeout_seconds=json.loads(fn.config).get("timeout_seconds"),
        )
        return self.store.create_run(run, [event], now)

    def cancel(self, run_id: str) -> RunRecord:
        """Cancel a run: no new step starts; a sleeping or waiting run ends at once."""
        return self.store.cancel_run(run_id, self.clock.now())

    def replay(self, run_id: str) -> str:
        """Start a new run with the same trigger as `run_id`, linked to it; returns its id."""
        original = self.store.get_run(run_id)
        fn = self.function(original.function_id)
        run = NewRun(
            id=new_id(),
            function_id=original.function_id,
            trigger_kind="replay",
            trigger_by=original.id,
            event_ids=original.event_ids,
            replay_of=original.id,
            timeout_seconds=json.loads(fn.config).get("timeout_seconds"),
        )
        return self.store.create_run(run, [], self.clock.now())

    def wait_for_run(self, run_id: str, timeout_seconds: float = 60.0) -> RunRecord:
        """Block until the run ends; raises `TimeoutError` after `timeout_seconds` (real time)."""
        deadline = time.monotonic() + timeout_seconds
        pause = threading.Event()
        while True:
            run = self.store.get_run(run_id)
            if run.ended:
                return run
            if time.monotonic() >= deadline:
                raise TimeoutError(f"run {run_id} still {run.status} after {timeout_seconds:g}s")
            pause.wait(0.02)

    def run_detail(self, run_id: str) -> RunDetail:
        """A run with its steps, failed attempts and logs; raises `NotFound`."""
        return RunDetail(
            run=self.store.get_run(run_id),
            steps=self.store.get_steps(run_id),
            attempts=self.store.get_attempts(run_id),
            logs=self.store.get_logs(run_id),
        )

    def list_runs(self, run_filter: RunFilter) -> list[RunRecord]:
        """Runs matching the filter, newest first."""
        return self.store.list_runs(run_filter)

    def runs_for_event(self, event_id: str) -> list[RunRecord]:
        """Runs started by one event (its internal id or the sender's id); `NotFound` if none."""
        event = self.store.get_event(event_id)
        return self.store.list_runs(RunFilter(event_id=event.internal_id, limit=1000))

    def get_event(self, event_id: str) -> EventRecord:
        """One event; raises `NotFound`."""
        return self.store.get_event(event_id)

    def list_functions(self) -> Sequence[FunctionRecord]:
        """The function registry."""
        return self.store.list_functions()

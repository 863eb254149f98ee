"""Park an SDK run on the ops of one answer: planned steps, sleeps, waits and invokes at once.

Every op of the answer is written in one transaction: waits are registered before any event
the other ops send can be processed (protocol §10.2), planned steps start as branch runs, an
invoke starts its run. The run is made due again once nothing it waits for is left (a branch
or invoked run ending settles its step; an event resolves its wait), or at the earliest wake.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from stepline import errors
from stepline.engine.events import INVOKED_EVENT, build_event
from stepline.engine.inngest.call import DISCOVERY
from stepline.engine.inngest.names import to_stepline
from stepline.engine.inngest.reply import Op
from stepline.engine.inngest.times import MAX_WAIT, until
from stepline.store.base import EventRecord, FunctionRecord, NewRun, NewWait, StepRecord

if TYPE_CHECKING:
    from stepline.engine.inngest.writer import Writer

_IGNORED = ("RunComplete", "DiscoveryRequest")
INVOKE_TIMEOUT = {
    "name": "InngestInvokeTimeoutError",
    "message": "Timed out waiting for invoked function to complete",
}


class Fanout:
    """The writes of one answer's async and planned ops, then one `park`."""

    def __init__(self, *, writer: Writer, now: datetime) -> None:
        self._writer = writer
        self._now = now
        self._steps: list[StepRecord] = []
        self._waits: list[NewWait] = []
        self._runs: list[NewRun] = []
        self._events: list[EventRecord] = []
        self._functions: dict[str, FunctionRecord] | None = None

    def add(self, op: Op) -> None:
        """Plan one op (a failure to plan it fails its step, which the app then sees)."""
        handler = {
            "StepPlanned": self._planned,
            "Sleep": self._sleep,
            "WaitForEvent": self._wait,
            "InvokeFunction": self._invoke,
        }.get(op.op)
        if op.op in _IGNORED:
            return
        if handler is None:
            self._fail(op, "NotSupported", f"{op.op} is not supported by Stepline")
            return
        handler(op)

    def park(self) -> str | None:
        """Write everything and park the run; DISCOVERY if nothing is left to wait for."""
        if not self._steps:
            return DISCOVERY
        wakes = [step.wake_at for step in self._steps if step.wake_at is not None]
        self._writer.park_all(
            min(wakes, default=self._now + MAX_WAIT),
            self._detail(),
            waits=self._waits,
            children=self._steps,
            runs=self._runs,
            events=self._events,
        )
        return None

    def _detail(self) -> str:
        kinds = {step.kind for step in self._steps}
        if "run" in kinds:
            return "PARALLEL"
        if "wait" in kinds:
            return "WAITING"
        return "INVOKING" if "invoke" in kinds else "SLEEPING"

    def _planned(self, op: Op) -> None:
        writer = self._writer
        self._steps.append(writer.record(op, "run", "waiting"))
        self._runs.append(
            writer.routing.new_run(
                writer.claimed.run.function_id,
                writer.config,
                kind="parallel",
                events=writer.claimed.events,
                now=self._now,
                trigger_by=writer.steps_run_id,
                parent=(writer.steps_run_id, op.id),
            )
        )

    def _sleep(self, op: Op) -> None:
        wake = until(op.opts.get("duration") or op.name, self._now)
        if wake is None:
            self._fail(op, "BadSleep", f"sleep {op.label!r}: cannot read {op.name!r} as a time")
        elif wake <= self._now:
            self._writer.commit(self._writer.record(op, "sleep", "completed"))
        else:
            self._steps.append(self._writer.record(op, "sleep", "sleeping", wake_at=wake))

    def _wait(self, op: Op) -> None:
        name = op.opts.get("event") or op.name
        timeout = op.opts.get("timeout")
        expires = self._now if timeout == "" else until(timeout, self._now, default=MAX_WAIT)
        if not isinstance(name, str) or not name or expires is None:
            self._fail(op, "BadWait", f"wait {op.label!r}: needs an event name and a timeout")
            return
        condition = op.opts.get("if")
        self._waits.append(
            NewWait(
                step_hash=op.id,
                event_name=to_stepline(name),
                expression=condition if isinstance(condition, str) and condition else None,
                expires_at=expires,
            )
        )
        self._steps.append(self._writer.record(op, "wait", "waiting", wake_at=expires))

    def _invoke(self, op: Op) -> None:
        function_id = op.opts.get("function_id")
        target = self._function(function_id)
        if isinstance(target, str):
            self._fail(op, "Error", target)
            return
        payload = op.opts.get("payload")
        data = payload.get("data") if isinstance(payload, dict) else None
        expires = until(op.opts.get("timeout"), self._now, default=MAX_WAIT)
        try:
            event = build_event(
                {"name": INVOKED_EVENT, "data": data or {}},
                now=self._now,
                field="payload",
                source="invoke",
                internal=True,
            )
        except errors.InvalidInput as exc:
            self._fail(op, "Error", f"invoke {op.label!r}: {exc}")
            return
        writer = self._writer
        self._events.append(event)
        self._runs.append(
            writer.routing.new_run(
                target.id,
                target.config,
                kind="invoke",
                events=(event,),
                now=self._now,
                trigger_by=writer.claimed.run.id,
                parent=(writer.steps_run_id, op.id),
            )
        )
        wake = expires or self._now + MAX_WAIT
        self._steps.append(writer.record(op, "invoke", "waiting", wake_at=wake))

    def _function(self, function_id: Any) -> FunctionRecord | str:
        """The function to invoke, or why it cannot be."""
        if self._functions is None:
            self._functions = {fn.id: fn for fn in self._writer.store.list_functions()}
        fn = self._functions.get(function_id) if isinstance(function_id, str) else None
        if fn is None:
            return f"could not find function with ID: {function_id}"
        if fn.paused:
            return f"function {function_id!r} is paused"
        return fn

    def _fail(self, op: Op, name: str, message: str) -> None:
        error = json.dumps({"name": name, "message": message})
        self._writer.commit(self._writer.record(op, "run", "failed", error=error))

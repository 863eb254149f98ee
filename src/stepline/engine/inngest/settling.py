"""Settle what an SDK run waited for and is now over, before the app is called again.

A run parked on sleeps, waits or invokes is made due at the earliest of their wake times: a
sleep that has ended is committed, a wait or invoke past its timeout is committed as such
(`null`; the invoke-timeout error). If anything is still pending the run parks again; only a
run with nothing left to wait for asks the app what comes next.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

from stepline.engine.inngest.fanout import INVOKE_TIMEOUT
from stepline.engine.inngest.times import MAX_WAIT
from stepline.engine.inngest.writer import Writer
from stepline.store.base import StepRecord

_PENDING = ("waiting", "sleeping")
_INTERNAL = ("parallel", "branch")  # an in-process run's group bookkeeping
_DETAIL = {"run": "PARALLEL", "wait": "WAITING", "invoke": "INVOKING", "sleep": "SLEEPING"}


class Settler:
    """Settles one claimed run's due steps (see the module docstring)."""

    def __init__(self, writer: Writer) -> None:
        self._writer = writer

    def pending(self) -> bool:
        """Whether the run waits for anything (read from the claim; no store access)."""
        return any(
            step.status in _PENDING and step.kind not in _INTERNAL
            for step in self._writer.steps.values()
        )

    def settle_due(self) -> bool:
        """True if nothing is pending any more (call the app); else the run is parked."""
        writer = self._writer
        now = writer.clock.now()
        pending: list[StepRecord] = []
        for step in list(writer.steps.values()):
            if step.status not in _PENDING or step.kind in _INTERNAL:
                continue
            if step.wake_at is None or step.wake_at > now:
                pending.append(step)
            elif not self._settle(step, now):
                writer.hand_back()  # settled by someone else meanwhile: start afresh
                return False
        if not pending:
            return True
        wakes = [step.wake_at for step in pending if step.wake_at is not None]
        kinds = {step.kind for step in pending}
        detail = next(d for kind, d in _DETAIL.items() if kind in kinds or kind == "sleep")
        writer.park_all(min(wakes, default=now + MAX_WAIT), detail)
        return False

    def _settle(self, step: StepRecord, now: datetime) -> bool:
        ended = replace(step, ended_at=now, status="completed")
        if step.kind == "sleep":
            return self._writer.commit(ended)
        if step.kind == "wait":
            return self._writer.commit(replace(ended, output="null"), consume_wait=True)
        failed = replace(ended, status="failed", error=json.dumps(INVOKE_TIMEOUT))
        return self._writer.commit(failed)

"""The scheduler: cron ticks (exactly once each, across schedulers), run timeouts, pruning.

Ended runs past their retention are pruned by the leader (`engine/retention.py`).

Missed ticks (ticks that fell due while no scheduler was running) follow the trigger's
`missed` policy: "latest" runs only the most recent one, once; "skip" runs none. A tick counts
as missed when it is older than `ON_TIME` at the moment a scheduler sees it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from stepline import errors
from stepline.engine.clock import Clock, Wakeup
from stepline.engine.events import CRON_EVENT, build_event
from stepline.engine.inngest.functions import SdkFunctions
from stepline.engine.retention import Pruner, RetentionSettings
from stepline.engine.routing import Routing
from stepline.sdk.app import Function
from stepline.sdk.triggers import CronTrigger, trigger_from_config
from stepline.store.base import EventRecord, Store

logger = logging.getLogger("stepline.scheduler")
ON_TIME = timedelta(seconds=60)
MAX_CATCH_UP_TICKS = 100_000
SWEEP_EVERY = timedelta(minutes=1)


def latest_due_tick(trigger: CronTrigger, after: datetime, now: datetime) -> datetime | None:
    """The last tick in (after, now], or None if none fell due."""
    due = due_ticks(trigger, after, now)
    return due[0] if due else None


def jitter(function_id: str, tick: datetime, seconds: float) -> timedelta:
    """A tick's delay within [0, seconds), the same wherever it is computed (Inngest's jitter)."""
    digest = hashlib.sha256(f"{function_id} {tick.isoformat()}".encode()).digest()
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % int(seconds * 1000) / 1000)


def due_ticks(trigger: CronTrigger, after: datetime, now: datetime) -> tuple[datetime, int] | None:
    """The last tick in (after, now] and how many earlier ones it passed, or None."""
    tick = trigger.next_after(after)
    if tick > now:
        return None
    passed = 0
    for _ in range(MAX_CATCH_UP_TICKS):
        following = trigger.next_after(tick)
        if following > now:
            break
        tick = following
        passed += 1
    return tick, passed


class Scheduler:
    """Fires due cron ticks for a set of functions, fails runs past their timeout, prunes.

    `retention`: the default retention and how pruning goes (default: 30 days).
    """

    def __init__(
        self,
        store: Store,
        functions: Iterable[Function],
        clock: Clock,
        *,
        poll_seconds: float = 1,
        routing: Routing | None = None,
        sdk_functions: SdkFunctions | None = None,
        retention: RetentionSettings | None = None,
    ) -> None:
        self._store = store
        self._sdk_functions = sdk_functions
        self._routing = routing or Routing()
        self._swept: datetime | None = None
        self._functions = list(functions)
        self._clock = clock
        self._poll_seconds = poll_seconds
        self._wakeup = Wakeup()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._leader = store.leader_lock()
        self._pruner = Pruner(store, retention or RetentionSettings(), self._stopping)
        clock.on_advance(self._wakeup.signal)

    def start(self) -> None:
        """Start the scheduler loop on a background thread."""
        self._thread = threading.Thread(target=self._loop, name="stepline-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and give up leadership."""
        self._stopping.set()
        self._wakeup.signal()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._leader.release()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                if self._leader.acquire():
                    self.tick()
            except errors.StoreError as exc:
                logger.warning("scheduler pass failed, retrying: %s", exc)
            self._wakeup.wait(self._poll_seconds)

    def tick(self) -> None:
        """One pass at the clock's current time: fire due ticks, fail timed-out runs, prune."""
        now = self._clock.now()
        for fn in self._functions:
            for trigger in fn.cron_triggers:
                self._fire(fn.id, fn.config(), trigger, now)
        for function_id, config, trigger, jitter in self._sdk_crons():
            self._fire(function_id, config, trigger, now, jitter)
        for run_id in self._store.fail_timed_out_runs(now, self._routing):
            logger.info("run %s ended: timeout", run_id)
        if self._swept is None or now - self._swept >= SWEEP_EVERY:
            self._store.sweep(now)
            self._swept = now
        self._pruner.tick(now)

    def _sdk_crons(self) -> list[tuple[str, str, CronTrigger, float]]:
        """The cron triggers of SDK apps' functions (with their jitter), as registered now."""
        if self._sdk_functions is None:
            return []
        crons = []
        for target in self._sdk_functions.current().values():
            for raw in json.loads(target.config)["triggers"]:
                trigger = trigger_from_config(raw)
                if isinstance(trigger, CronTrigger):
                    crons.append((target.id, target.config, trigger, raw.get("jitter_seconds", 0)))
        return crons

    def _fire(
        self,
        function_id: str,
        config: str,
        trigger: CronTrigger,
        now: datetime,
        jitter_seconds: float = 0,
    ) -> None:
        last = self._store.cron_last_tick(function_id, trigger.schedule)
        if last is None:
            # First sight of this schedule: start counting from now, never run the past.
            self._store.fire_cron_tick(function_id, trigger.schedule, now, None, now)
            return
        due = due_ticks(trigger, last, now)
        if due is None:
            return
        tick, passed = due
        if trigger.missed == "skip" and now - tick > ON_TIME:
            logger.info("%s: skipping missed tick %s", function_id, tick.isoformat())
            self._store.fire_cron_tick(
                function_id, trigger.schedule, tick, None, now, missed=passed + 1
            )
            return
        event = self._tick_event(trigger, tick, now)
        run = self._routing.new_run(
            function_id,
            config,
            kind="cron",
            events=(event,),
            now=now,
            trigger_by=trigger.schedule,
            idempotency_key=f"cron:{trigger.schedule}:{tick.isoformat()}",
        )
        if jitter_seconds:
            run = replace(
                run, available_at=max(now, tick + jitter(function_id, tick, jitter_seconds))
            )
        if passed:
            logger.info(
                "%s: %d missed tick(s) before %s not run", function_id, passed, tick.isoformat()
            )
        fired = self._store.fire_cron_tick(
            function_id,
            trigger.schedule,
            tick,
            run,
            now,
            events=[event],
            missed=passed,
            routing=self._routing,
        )
        if fired:
            logger.info("%s: fired tick %s as run %s", function_id, tick.isoformat(), run.id)

    @staticmethod
    def _tick_event(trigger: CronTrigger, tick: datetime, now: datetime) -> EventRecord:
        scheduled = tick.astimezone(trigger.zone()).isoformat()
        raw = {
            "name": CRON_EVENT,
            "data": {"cron": trigger.schedule, "scheduled_at": scheduled},
        }
        return build_event(raw, now=now, source="cron", internal=True)

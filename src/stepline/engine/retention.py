"""Retention: the scheduler leader prunes ended runs past their retention, every few minutes.

Each function keeps its ended runs for its own `retention=`, else for the default (`--retain`,
30 days; "forever" keeps them). A pass starts at most every `RetentionSettings.every`; it
removes ended runs a batch at a time (`Store.prune_batch`, one short transaction each), each
batch sized so that its write transaction takes about `batch_seconds` (SQLite 5 ms, PostgreSQL
10 ms; at most 100 runs: `Pacing`), and pausing between batches at least three times as long
as the last one took. So pruning holds SQLite's write lock for a few milliseconds at a time and
less than a quarter of the time. A scheduler tick spends at most `budget_seconds` on it and
the next tick carries on, so cron ticks and timeouts are never held up for long. What a pass
removed is logged at INFO (logger `stepline.retention`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from stepline._retention import DEFAULT_RETENTION, Retention, function_retention
from stepline.store.base import FunctionRecord, Store
from stepline.store.pruning import Cursor, PruneCounts, PrunePass, PruneRule

logger = logging.getLogger("stepline.retention")


@dataclass(frozen=True, kw_only=True)
class RetentionSettings:
    """The default retention and how the scheduler leader prunes.

    Attributes:
        default: How long ended runs of functions without their own `retention=` are kept,
            and events no run refers to; None keeps them forever.
        every: How often a prune pass starts.
        batch: The most runs (or events) per transaction.
        batch_seconds: How long a batch's write transaction should take (the batch size
            follows); None: the store's own `prune_write_seconds` (SQLite 5 ms: a batch holds
            its only write lock; PostgreSQL 10 ms: a batch locks rows no one else uses).
        pause_seconds: The least pause between two batches.
        budget_seconds: The longest a scheduler tick spends pruning; the next one carries on.
    """

    default: Retention = DEFAULT_RETENTION
    every: timedelta = timedelta(minutes=5)
    batch: int = 100
    batch_seconds: float | None = None
    pause_seconds: float = 0.02

    def pacing(self, store: Store) -> Pacing:
        """A fresh `Pacing` for these settings on `store`."""
        target = self.batch_seconds or store.prune_write_seconds
        return Pacing(most=self.batch, batch_seconds=target, pause=self.pause_seconds)

    budget_seconds: float = 2.0


def prune_rule(functions: Sequence[FunctionRecord], default: Retention, now: datetime) -> PruneRule:
    """The scheduler's rule: each function's own retention, the default for the others."""
    cutoffs: dict[str, float | None] = {}
    for fn in functions:
        retention, source = function_retention(json.loads(fn.config), default)
        if source == "function":
            cutoffs[fn.id] = None if retention is None else (now - retention).timestamp()
    before = None if default is None else (now - default).timestamp()
    return PruneRule(now=now.timestamp(), default=before, cutoffs=cutoffs, events_before=before)


def older_than_rule(older_than: timedelta, now: datetime, function_id: str | None) -> PruneRule:
    """`stepline db prune`'s rule: runs ended before `now - older_than`, of one function or all.

    For all, the events no run refers to, received before then, go too.
    """
    cutoff = (now - older_than).timestamp()
    if function_id is not None:
        return PruneRule(now=now.timestamp(), default=None, cutoffs={function_id: cutoff})
    return PruneRule(now=now.timestamp(), default=cutoff, events_before=cutoff)


PAUSE_FACTOR = 3
"""A pause between batches is at least this many times the last batch's time."""


@dataclass(kw_only=True)
class Pacing:
    """How big each batch of a prune is, and how long the pause after it.

    A batch's size is scaled after each batch so that its write transaction takes about
    `batch_seconds` (within 1 and `most`, at most doubling at a time); the pause after a batch
    is at least `pause` and `PAUSE_FACTOR` times that transaction. (Finding a batch reads
    outside the transaction, blocking no one: it is not counted.)
    """

    most: int
    batch_seconds: float
    pause: float
    size: int = 10

    def __post_init__(self) -> None:
        self.size = min(self.size, self.most)

    def after(self, took: float) -> float:
        """Adjust the next batch's size to a batch that wrote for `took` seconds; the pause."""
        if took > 0:
            scaled = int(self.size * self.batch_seconds / took)
            self.size = max(1, min(self.most, 2 * self.size, scaled))
        return max(self.pause, PAUSE_FACTOR * took)


def prune(
    store: Store,
    progress: PrunePass,
    pacing: Pacing,
    *,
    until: float | None = None,
    stop: Callable[[float], bool] | None = None,
    on_batch: Callable[[float, PruneCounts], None] | None = None,
) -> PruneCounts:
    """Run `progress` batch by batch, paced by `pacing`; returns what these batches removed.

    It stops when done, near `until` (a `time.monotonic()` deadline) or when `stop(pause)`
    returns True. Between batches it pauses (`stop`, else `time.sleep`). `on_batch` hears of
    each batch: how long it held its write transaction (seconds) and what it removed.
    """
    counts = PruneCounts()
    while True:
        started = time.monotonic()
        removed = store.prune_batch(progress, pacing.size)
        took = time.monotonic() - started
        counts.add(removed)
        if on_batch is not None:
            on_batch(progress.write_seconds, removed)
        if progress.done or (until is not None and time.monotonic() + took > until):
            return counts
        pause = pacing.after(progress.write_seconds)
        if stop is None:
            time.sleep(pause)
        elif stop(pause):
            return counts


class Pruner:
    """The scheduler leader's pruning: a pass every `settings.every`, spread over ticks.

    `stopping` is the scheduler's: its pauses end early when the scheduler stops. A tick while
    another thread's tick is pruning (a test calling `Scheduler.tick`) leaves it to that one.
    """

    def __init__(
        self, store: Store, settings: RetentionSettings, stopping: threading.Event
    ) -> None:
        self._store = store
        self._settings = settings
        self._stopping = stopping
        self._busy = threading.Lock()
        self._pass: PrunePass | None = None
        self._started: datetime | None = None
        self._removed = PruneCounts()
        self._pacing = settings.pacing(store)  # its batch size carries over from tick to tick
        # Events already looked at by an earlier pass: each is looked at once; one a run
        # still referred to then goes with that run's prune.
        self._event_cursor: Cursor | None = None

    def tick(self, now: datetime) -> None:
        """Start a pass if one is due, and carry the current one on for up to the budget."""
        if not self._busy.acquire(blocking=False):
            return
        try:
            self._carry_on(now)
        finally:
            self._busy.release()

    def _carry_on(self, now: datetime) -> None:
        settings = self._settings
        if self._pass is None:
            if self._started is not None and now - self._started < settings.every:
                return
            rule = prune_rule(self._store.list_functions(), settings.default, now)
            self._pass = PrunePass(rule=rule, event_cursor=self._event_cursor)
            self._started, self._removed = now, PruneCounts()
        self._removed.add(
            prune(
                self._store,
                self._pass,
                self._pacing,
                until=time.monotonic() + settings.budget_seconds,
                stop=self._stopping.wait,
            )
        )
        if self._pass.done:
            self._event_cursor = self._pass.event_cursor
            self._pass = None
            if self._removed:
                logger.info("retention: removed %s", self._removed.text())

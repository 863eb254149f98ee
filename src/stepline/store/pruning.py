"""What a prune removes and how far it has got: the records between the engine and the store.

The store's part is `store/retention.py` (what goes with a run, batches, locks).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

Cursor = tuple[float, str]


@dataclass(frozen=True, kw_only=True, slots=True)
class PruneRule:
    """Which ended runs and events a prune removes; times are epoch seconds.

    A run of a function in `cutoffs` goes if it ended before that function's cutoff (None:
    never); a run of any other function if it ended before `default` (None: never). Events no
    run refers to go once received before `events_before` (None: never) and `now` less 24 h.
    """

    now: float
    default: float | None
    cutoffs: Mapping[str, float | None] = field(default_factory=dict)
    events_before: float | None = None


@dataclass(kw_only=True, slots=True)
class PruneCounts:
    """What a prune removed (or, dry, would remove)."""

    runs: int = 0
    steps: int = 0
    attempts: int = 0
    logs: int = 0
    events: int = 0
    blobs: int = 0  # large outputs no run refers to any more

    def add(self, other: PruneCounts) -> None:
        """Add another batch's counts to these."""
        self.runs += other.runs
        self.steps += other.steps
        self.attempts += other.attempts
        self.logs += other.logs
        self.events += other.events
        self.blobs += other.blobs

    def __bool__(self) -> bool:
        return any((self.runs, self.steps, self.attempts, self.logs, self.events, self.blobs))

    def text(self) -> str:
        """In words: "12 runs, 36 steps, 2 attempts, 40 log lines, 12 events, 1 blob"."""
        counted = (
            (self.runs, "run"),
            (self.steps, "step"),
            (self.attempts, "attempt"),
            (self.logs, "log line"),
            (self.events, "event"),
            (self.blobs, "blob"),
        )
        return ", ".join(f"{n:,} {noun}{'' if n == 1 else 's'}" for n, noun in counted)


@dataclass(kw_only=True, slots=True)
class PrunePass:
    """A prune in progress: its rule, how far it has got, and (dry) what it has counted.

    Pass it to `prune_batch` until `done`. `counted_runs` and `counted_events` stand, in a dry
    run, for the deletions it did not make: an event whose runs were all counted would go.
    """

    rule: PruneRule
    dry_run: bool = False
    run_cursor: Cursor | None = None
    runs_done: bool = False
    event_cursor: Cursor | None = None
    events_done: bool = False
    blob_cursor: str | None = None
    blobs_done: bool = False
    counted_runs: set[str] = field(default_factory=set)
    counted_events: set[str] = field(default_factory=set)
    write_seconds: float = 0.0  # how long the last batch held its write transaction

    @property
    def done(self) -> bool:
        """Nothing is left to look at."""
        return self.runs_done and self.events_done and self.blobs_done


@contextmanager
def timed_write(progress: PrunePass) -> Iterator[None]:
    """Record in `progress.write_seconds` how long the block (a batch's write) took."""
    started = time.monotonic()
    try:
        yield
    finally:
        progress.write_seconds = time.monotonic() - started


class RetentionStore(Protocol):
    """The store's part in retention (see the module docstring).

    `prune_write_seconds`: how long one batch's write transaction should take here: short
    where it holds the only write lock (SQLite), longer where it locks only rows no one else
    uses (PostgreSQL), as each batch has a fixed cost of a dozen statements.
    """

    prune_write_seconds: float

    def prune_batch(self, progress: PrunePass, limit: int) -> PruneCounts:
        """Remove (dry: count) one batch of runs, or of events once the runs are done.

        Up to `limit` runs with the runs they started, then up to `limit` events no run
        refers to, then up to `limit` blobs no run refers to; advances `progress` (with
        `write_seconds`: 0 when the batch wrote nothing).
        """
        ...

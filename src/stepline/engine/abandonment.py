"""Which of a worker's executing runs it has lost, and which of those hold a slot for nothing.

A run is *lost* when a heartbeat finds its lease gone (the run was cancelled, timed out, or
its lease lapsed and another worker took it) while this worker is still executing it. Nothing
that replay does can be committed any more. A lost run whose replay is still executing at the
next heartbeat is *abandoned*: its slot is held by user code (a step that has not returned)
that may never return. A replay that just parked or finished also shows as lost for an instant,
but it is gone by the next heartbeat, so it never counts as abandoned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from stepline.store.base import ClaimedRun


class Abandonment:
    """What the heartbeats found about the runs in flight (the caller serializes access)."""

    def __init__(self) -> None:
        self._lost: dict[str, ClaimedRun] = {}
        self._abandoned: set[str] = set()

    @property
    def lost(self) -> list[str]:
        """Runs in flight whose lease the last heartbeat found gone."""
        return list(self._lost)

    @property
    def abandoned(self) -> int:
        """Slots held by abandoned replays."""
        return len(self._abandoned)

    def update(
        self,
        checked: Mapping[str, ClaimedRun],
        gone: Iterable[str],
        executing: Mapping[str, ClaimedRun],
    ) -> list[str]:
        """Record one heartbeat; returns the runs it found lost for the first time.

        Args:
            checked: The claims whose leases the heartbeat tried to extend.
            gone: The ids among them whose lease this worker no longer holds.
            executing: The claims in flight now (a claim that ended meanwhile is not lost).
        """
        lost = {
            run_id: checked[run_id]
            for run_id in gone
            if executing.get(run_id) is checked[run_id]  # the same replay, still executing
        }
        self._abandoned = {run_id for run_id in lost if self._lost.get(run_id) is lost[run_id]}
        fresh = [run_id for run_id in lost if self._lost.get(run_id) is not lost[run_id]]
        self._lost = lost
        return fresh

    def forget(self, run_id: str) -> bool:
        """The run's replay ended; True if its lease had been lost."""
        self._abandoned.discard(run_id)
        return self._lost.pop(run_id, None) is not None

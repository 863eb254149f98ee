"""Which of a worker's executing runs it has lost, and which of those hold a slot for nothing.

A run is *lost* when the worker finds its lease gone (the run was cancelled, timed out, or its
lease lapsed and another worker took it) while it is still executing it. Nothing that replay
does can be committed any more. The worker checks at each heartbeat, and at once when the store
reports runs ended by a cancel or timeout. A lost run whose replay is still executing at the
heartbeat after the one that first saw it lost is *abandoned*: its slot is held by user code (a
step that has not returned) that may never return. A replay that just parked or finished also
shows as lost for an instant, but it is gone by the next heartbeat, so it never counts as
abandoned; neither does a run found lost between heartbeats before a heartbeat saw it lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from stepline.store.base import ClaimedRun


class Abandonment:
    """What the lease checks found about the runs in flight (the caller serializes access)."""

    def __init__(self) -> None:
        self._lost: dict[str, ClaimedRun] = {}
        self._seen: dict[str, ClaimedRun] = {}  # the lost runs the last heartbeat found
        self._abandoned: set[str] = set()

    @property
    def lost(self) -> list[str]:
        """Runs in flight whose lease was found gone."""
        return list(self._lost)

    @property
    def abandoned(self) -> int:
        """Slots held by abandoned replays."""
        return len(self._abandoned)

    @property
    def abandoned_runs(self) -> frozenset[str]:
        """The runs whose abandoned replays hold those slots."""
        return frozenset(self._abandoned)

    def update(
        self,
        checked: Mapping[str, ClaimedRun],
        gone: Iterable[str],
        executing: Mapping[str, ClaimedRun],
        *,
        heartbeat: bool = True,
    ) -> list[str]:
        """Record one lease check; returns the runs it found lost for the first time.

        Args:
            checked: The claims whose leases the check tried to extend.
            gone: The ids among them whose lease this worker no longer holds.
            executing: The claims in flight now (a claim that ended meanwhile is not lost).
            heartbeat: True for a heartbeat (it checked every claim in flight); False for a
                check of a few runs between heartbeats, which adds lost runs but never
                counts one as abandoned.
        """
        lost = {
            run_id: checked[run_id]
            for run_id in gone
            if executing.get(run_id) is checked[run_id]  # the same replay, still executing
        }
        fresh = [run_id for run_id in lost if self._lost.get(run_id) is not lost[run_id]]
        if not heartbeat:
            self._lost.update(lost)
            return fresh
        self._abandoned = {run_id for run_id in lost if self._seen.get(run_id) is lost[run_id]}
        self._lost = lost
        self._seen = dict(lost)
        return fresh

    def forget(self, run_id: str) -> bool:
        """The run's replay ended; True if its lease had been lost."""
        self._abandoned.discard(run_id)
        self._seen.pop(run_id, None)
        return self._lost.pop(run_id, None) is not None

"""How a replay left its run when it did not park it: ended (COMPLETED, FAILED), or lost."""

from __future__ import annotations

from dataclasses import dataclass

from stepline.store.base import RunStatus


@dataclass(frozen=True, kw_only=True, slots=True)
class Ending:
    """How a replay left its run, when it did not park it: ended, or taken from it.

    Attributes:
        status: COMPLETED or FAILED, as committed; None when the lease was lost.
        error: The failure as stored (JSON with `name` and `message`).
    """

    status: RunStatus | None
    error: str | None = None

    @property
    def lost(self) -> bool:
        """The run was no longer this replay's (cancelled, timed out or reclaimed)."""
        return self.status is None


COMPLETED = Ending(status="COMPLETED")
LOST = Ending(status=None)

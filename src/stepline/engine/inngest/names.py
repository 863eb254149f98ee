"""One event, two names: Stepline's system events as the Inngest SDKs call them.

Stepline stores its system events under `stepline/...` names; an SDK app knows the same events
as `inngest/...` (protocol §8.5-8.7). Names are translated at the edge: an SDK's trigger, wait
or cancel name on the way in (`to_stepline`), a stored event's name on the way out
(`to_inngest`). Every other name passes through unchanged.
"""

from __future__ import annotations

from stepline.engine.events import CRON_EVENT, INVOKED_EVENT
from stepline.store.base import CANCELLED_EVENT, FAILED_EVENT, FINISHED_EVENT

INNGEST_FAILED_EVENT = "inngest/function.failed"
INNGEST_FINISHED_EVENT = "inngest/function.finished"
INNGEST_CANCELLED_EVENT = "inngest/function.cancelled"
INNGEST_INVOKED_EVENT = "inngest/function.invoked"
INNGEST_CRON_EVENT = "inngest/scheduled.timer"

_STEPLINE_NAME = {
    INNGEST_FAILED_EVENT: FAILED_EVENT,
    INNGEST_FINISHED_EVENT: FINISHED_EVENT,
    INNGEST_CANCELLED_EVENT: CANCELLED_EVENT,
    INNGEST_INVOKED_EVENT: INVOKED_EVENT,
    INNGEST_CRON_EVENT: CRON_EVENT,
}
_INNGEST_NAME = {stored: sdk for sdk, stored in _STEPLINE_NAME.items()}

INNGEST_SYSTEM_EVENTS = frozenset(_STEPLINE_NAME)
"""The system events' names as the SDKs know them."""
STEPLINE_SYSTEM_EVENTS = frozenset(_INNGEST_NAME)
"""The same events' names as Stepline stores them."""


def to_stepline(name: str) -> str:
    """The stored name of an event an SDK names: "inngest/function.failed" → "stepline/..."."""
    return _STEPLINE_NAME.get(name, name)


def to_inngest(name: str) -> str:
    """The name an SDK sees for a stored event: "stepline/function.failed" → "inngest/..."."""
    return _INNGEST_NAME.get(name, name)

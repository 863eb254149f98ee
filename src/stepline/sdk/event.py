"""`ctx.event` and `ctx.trigger`: the event a run received, and how the run was started."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NoReturn

RunTriggerKind = Literal["event", "cron", "manual", "invoke", "replay", "rerun"]
"""How a run was started, as `ctx.trigger.kind` reports it."""


def _read_only(*_: Any, **__: Any) -> NoReturn:
    raise TypeError("stepline.Event is read-only; copy it with dict(event) to change it")


class Event(dict[str, Any]):
    """An event as a function sees it: `ctx.event.data`, `.name`, `.id`, `.ts`, `.user`.

    Read-only. It is also the mapping `{id, name, data, user, ts}` it always was, so
    `ctx.event["data"]`, `ctx.event.get("data")`, `dict(ctx.event)` and `json.dumps(ctx.event)`
    keep working, and an event may be returned from a step as it is. `data` and `user` are
    plain dicts decoded afresh for each replay.

    Args:
        id: The event's id (the sender's, or the server's when it gave none).
        name: The event's name, e.g. `shop/order.placed`.
        data: The event's data.
        user: The event's `user` object.
        ts: When it was sent, in milliseconds since the epoch.
    """

    __slots__ = ()

    def __init__(
        self,
        *,
        id: str,  # the event's field is called id
        name: str,
        data: dict[str, Any],
        user: dict[str, Any] | None = None,
        ts: int = 0,
    ) -> None:
        super().__init__(id=id, name=name, data=data, user=user or {}, ts=ts)

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> Event:
        """The event from its mapping form; `id`, `user` and `ts` may be missing."""
        return cls(
            id=payload.get("id") or "",
            name=payload.get("name") or "",
            data=payload.get("data") or {},
            user=payload.get("user") or {},
            ts=payload.get("ts") or 0,
        )

    @property
    def id(self) -> str:
        """The event's id (also its idempotency key)."""
        return str(self["id"])

    @property
    def name(self) -> str:
        """The event's name."""
        return str(self["name"])

    @property
    def data(self) -> dict[str, Any]:
        """The event's data."""
        value: dict[str, Any] = self["data"]
        return value

    @property
    def user(self) -> dict[str, Any]:
        """The event's `user` object (`{}` when it had none)."""
        value: dict[str, Any] = self["user"]
        return value

    @property
    def ts(self) -> int:
        """When the event was sent, in milliseconds since the epoch."""
        return int(self["ts"])

    def __reduce__(self) -> tuple[Any, ...]:
        return (Event.of, (dict(self),))

    def __repr__(self) -> str:
        return f"Event({dict.__repr__(self)})"

    __setitem__ = __delitem__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only
    __ior__ = _read_only  # refuses `|=` rather than returning self


@dataclass(frozen=True, kw_only=True, slots=True)
class RunTrigger:
    """`ctx.trigger`: how this run was started.

    A parallel branch reports the trigger of the run it belongs to.

    Attributes:
        kind: `event` (an event matched a trigger), `cron` (a schedule's tick), `manual`
            (Run now, `stepline trigger`, `Client.invoke`), `invoke` (another function's
            `step.invoke`), `replay` (a replay of an earlier run) or `rerun`.
        by: Who started it, when known: for `manual` the caller (the API token's name, also
            the CLI's, `dashboard:<token name>`, `client` for an in-process `Client`; on an
            open server `api` or `dashboard`); for `invoke` the parent run's id; for `replay`
            the id of the run replayed; for `cron` the schedule; for `event` the name of the
            event key or API token the event came with (None on an open server).
        scheduled_at: For `cron`, the tick the run was scheduled for (in the schedule's time
            zone), however late it started; otherwise None.
    """

    kind: RunTriggerKind
    by: str | None = None
    scheduled_at: datetime | None = None

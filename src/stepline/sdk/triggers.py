"""Triggers: the events and cron schedules that start a function's runs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from stepline import errors
from stepline._cel import compile_expression
from stepline._checks import is_text

_EVENT_NAME = re.compile(r"^[^\s]{1,512}$")
MissedTicks = Literal["latest", "skip"]


@dataclass(frozen=True, kw_only=True, slots=True)
class EventTrigger:
    """Start a run for every event named `name` (for which `if_` is true, when given)."""

    name: str
    if_: str | None = None

    def to_config(self) -> dict[str, Any]:
        """The trigger as stored in the function registry."""
        return {"event": self.name, **({"if": self.if_} if self.if_ else {})}


@dataclass(frozen=True, kw_only=True, slots=True)
class CronTrigger:
    """Start a run at each tick of a cron expression, read in the IANA time zone `tz`.

    Ticks that fall due while no scheduler runs are handled by `missed`: "latest" (the default)
    runs the most recent missed tick once when a scheduler comes back, never a burst; "skip"
    runs none of them.
    """

    expression: str
    tz: str = "UTC"
    missed: MissedTicks = "latest"

    @property
    def schedule(self) -> str:
        """A stable key naming this schedule, e.g. "TZ=Africa/Johannesburg 0 0 * * *"."""
        return f"TZ={self.tz} {self.expression}"

    def zone(self) -> ZoneInfo:
        """The schedule's time zone."""
        return ZoneInfo(self.tz)

    def next_after(self, moment: datetime) -> datetime:
        """The first tick strictly after `moment` (an aware datetime), as an aware datetime."""
        local = moment.astimezone(self.zone())
        return next(iter(CronSim(self.expression, local)))

    def to_config(self) -> dict[str, Any]:
        """The trigger as stored in the function registry."""
        return {"cron": self.expression, "tz": self.tz, "missed": self.missed}


Trigger = EventTrigger | CronTrigger


def event(name: str, *, if_: str | None = None) -> EventTrigger:
    """Trigger on events named `name`, optionally filtered by a CEL expression over `event`.

    Args:
        name: The event name, e.g. "stations/sync.requested". A trailing "/*" or ".*" matches
            every name under that prefix.
        if_: A CEL expression such as `event.data.region == "north"`.

    Raises:
        ConfigurationError: The name or expression is invalid.
    """
    if not is_text(name, _EVENT_NAME):
        raise errors.ConfigurationError(
            f"event trigger name {name!r} must be 1-512 characters without spaces"
        )
    if if_ is not None:
        try:
            compile_expression(if_, field="if_")
        except errors.InvalidInput as exc:
            raise errors.ConfigurationError(str(exc)) from None
    return EventTrigger(name=name, if_=if_)


def cron(expression: str, *, tz: str = "UTC", missed: MissedTicks = "latest") -> CronTrigger:
    """Trigger on a cron schedule: five fields (minute hour day month weekday), in zone `tz`.

    Daylight-saving changes follow cron's usual rules: a local time that does not exist that
    day runs at the next valid time; a local time that happens twice runs once.

    Raises:
        ConfigurationError: The expression, time zone or `missed` policy is invalid.
    """
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise errors.ConfigurationError(
            f"unknown time zone {tz!r}; use an IANA name like 'Africa/Johannesburg'"
        ) from None
    if missed not in ("latest", "skip"):
        raise errors.ConfigurationError(f"missed must be 'latest' or 'skip', not {missed!r}")
    try:
        CronSim(expression, datetime.now(zone))
    except (CronSimError, ValueError, TypeError) as exc:
        raise errors.ConfigurationError(f"invalid cron expression {expression!r}: {exc}") from None
    return CronTrigger(expression=expression, tz=tz, missed=missed)


def trigger_from_config(config: dict[str, Any]) -> Trigger:
    """Rebuild a trigger from its stored form."""
    if "cron" in config:
        return CronTrigger(expression=config["cron"], tz=config["tz"], missed=config["missed"])
    return EventTrigger(name=config["event"], if_=config.get("if"))

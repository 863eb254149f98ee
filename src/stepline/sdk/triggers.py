"""Triggers: the events and cron schedules that start a function's runs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from stepline import errors
from stepline._cel import check_variables, compile_condition
from stepline._checks import is_text

_EVENT_NAME = re.compile(r"^[^\s]{1,512}$")
_CRON_FIELDS = 5  # cronsim also reads six (a seconds field): refused, as it surprises
MissedTicks = Literal["latest", "skip"]


@dataclass(frozen=True, kw_only=True, slots=True)
class EventTrigger:
    """Start a run for every event named `name` (for which `if_` is true, when given)."""

    name: str
    if_: str | None = None

    def __str__(self) -> str:
        return f"event({self.name!r})"

    def check(self) -> None:
        """Raise `InvalidInput` naming the option that is invalid."""
        if not is_text(self.name, _EVENT_NAME):
            raise errors.InvalidInput("must be 1-512 characters without spaces", "name")
        if self.if_ is not None:
            compile_condition(self.if_, field="if_")
            check_variables(self.if_, ("event",), field="if_")

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

    def __str__(self) -> str:
        return f"cron({self.expression!r})"

    def check(self) -> None:
        """Raise `InvalidInput` naming the option that is invalid."""
        try:
            zone = ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise errors.InvalidInput(
                f"unknown time zone {self.tz!r}; use an IANA name like 'Africa/Johannesburg'",
                "tz",
            ) from None
        if self.missed not in ("latest", "skip"):
            raise errors.InvalidInput(f"must be 'latest' or 'skip', not {self.missed!r}", "missed")
        fields = len(self.expression.split()) if is_text(self.expression) else 0
        if fields != _CRON_FIELDS:
            raise errors.InvalidInput(
                f"expected five fields (minute hour day month weekday), got {fields}",
                "expression",
            )
        try:
            CronSim(self.expression, datetime.now(zone))
        except (CronSimError, ValueError, TypeError) as exc:
            raise errors.InvalidInput(str(exc), "expression") from None

    def to_config(self) -> dict[str, Any]:
        """The trigger as stored in the function registry."""
        return {"cron": self.expression, "tz": self.tz, "missed": self.missed}


Trigger = EventTrigger | CronTrigger


def event(name: str, *, if_: str | None = None) -> EventTrigger:
    """Trigger on events named `name`, optionally filtered by a CEL expression over `event`.

    The trigger is checked when its function is declared, so that an error names the function.

    Args:
        name: The event name, e.g. "stations/sync.requested". A trailing "/*" or ".*" matches
            every name under that prefix.
        if_: A CEL condition such as `event.data.region == "north"`. An event for which it
            fails to evaluate (a missing field, a division by zero) does not match.
    """
    return EventTrigger(name=name, if_=if_)


def cron(expression: str, *, tz: str = "UTC", missed: MissedTicks = "latest") -> CronTrigger:
    """Trigger on a cron schedule: five fields (minute hour day month weekday), in zone `tz`.

    Daylight-saving changes follow cron's usual rules: a local time that does not exist that
    day runs at the next valid time; a local time that happens twice runs once. The trigger is
    checked when its function is declared, so that an error names the function.
    """
    return CronTrigger(expression=expression, tz=tz, missed=missed)


def trigger_from_config(config: dict[str, Any]) -> Trigger:
    """Rebuild a trigger from its stored form."""
    if "cron" in config:
        return CronTrigger(expression=config["cron"], tz=config["tz"], missed=config["missed"])
    return EventTrigger(name=config["event"], if_=config.get("if"))

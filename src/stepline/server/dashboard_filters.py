"""The runs and events pages' filters: read from a query string or form, and written back.

They are checked exactly as `GET /v1/runs` and `GET /v1/events` check them; the dashboard
adds times typed without an offset (the `datetime-local` inputs without JavaScript, meaning
UTC), `since` (a relative range), and runs selected one by one (`run_id`, repeated, as the
runs table's checkboxes send them, or `run_ids`, comma-separated, as the dashboard's links
and forms write them). Links carry times as RFC 3339 with the offset they were given in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from starlette.datastructures import ImmutableMultiDict

from stepline import errors
from stepline._durations import parse_duration
from stepline.server.models import MAX_LIMIT, EventQuery, RunQuery, parse
from stepline.store.base import RunFilter

PAGE_SIZE = 50
RANGES = (
    ("15m", "Last 15 minutes"),
    ("1h", "Last hour"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
)
"""The relative ranges the runs page offers (`since`), and their labels."""
MAX_RUN_ID = 64  # characters of a run id (they are 26-character ULIDs)


def _moment(text: str) -> datetime | str:
    """A time typed into the filters: RFC 3339, or a date and time without offset (UTC)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return text  # the API's parsing says what is wrong with it
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _checked(value: datetime | None, field: str) -> datetime | None:
    """A filter time, kept in the offset it was given in, if it has a UTC equivalent."""
    if value is None:
        return None
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise errors.InvalidInput("must fall within the years 1 to 9999 in UTC", field) from None
    return value


def moment_text(value: datetime | None) -> str | None:
    """A filter time as links carry it: RFC 3339 to the second, in its offset ("Z" for UTC)."""
    if value is None:
        return None
    text = value.replace(microsecond=0).isoformat()
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


def input_text(value: datetime | None) -> str:
    """A filter time as a `datetime-local` input shows it without JavaScript (UTC, seconds)."""
    if value is None:
        return ""
    return value.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat()


def _given(params: Mapping[str, str], model: type[BaseModel]) -> dict[str, Any]:
    """The model's parameters that are filled in (an empty form field means "any")."""
    return {name: params[name] for name in model.model_fields if params.get(name)}


def _since(run_filter: RunFilter, since: str | None, now: datetime) -> RunFilter:
    """`since` ("2h", "30m", "1d"): created in the last that long before `now`.

    The bound is taken to the whole second, as the filters' links and forms show times. With
    `created_after` also given, the later of the two bounds holds (both must).
    """
    if not since:
        return run_filter
    try:
        start = (now - parse_duration(since, field="since")).replace(microsecond=0)
    except OverflowError:
        raise errors.InvalidInput("reaches back before the year 1", "since") from None
    if run_filter.created_after is not None and run_filter.created_after >= start:
        return run_filter
    return replace(run_filter, created_after=start)


def _run_ids(params: Mapping[str, str]) -> tuple[str, ...] | None:
    """The runs selected one by one: every `run_id`, and the comma-separated `run_ids`."""
    found = params.getlist("run_id") if isinstance(params, ImmutableMultiDict) else []
    found += [part for part in params.get("run_ids", "").split(",") if part]
    if not found:
        return None
    if len(found) > MAX_LIMIT:
        raise errors.InvalidInput(f"select at most {MAX_LIMIT} runs at once", "run_id")
    for run_id in found:
        if not (run_id.isascii() and run_id.isalnum() and len(run_id) <= MAX_RUN_ID):
            raise errors.InvalidInput(f"{run_id[:MAX_RUN_ID]!r} is not a run id", "run_id")
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True, kw_only=True, slots=True)
class RunsFilters:
    """The runs page's filters as given: the criteria, and `since` still relative.

    `at(now)` is the store's filter; `params()` the query parameters that give these filters
    again (the page's links, its live stream), `since` kept relative.
    """

    given: RunFilter
    since: str | None

    def at(self, now: datetime) -> RunFilter:
        """The store's filter at `now` (`since` resolved into `created_after`)."""
        return _since(self.given, self.since, now)

    def params(self) -> dict[str, str]:
        """The filters as query parameters, without the page cursor."""
        found = filter_params(replace(self.given, before=None))
        return {**found, "since": self.since} if self.since else found


def runs_filters(params: Mapping[str, str], now: datetime) -> RunsFilters:
    """The runs page's filters, checked as `GET /v1/runs` checks them (and `since`).

    Times may also be typed without an offset (a `datetime-local` input), meaning UTC.
    """
    given = _given(params, RunQuery)
    for name in ("created_after", "created_before"):
        if name in given:
            given[name] = _moment(given[name])
    query = parse(RunQuery, given, where="query")
    run_filter = query.run_filter(before=query.before, limit=query.limit)
    run_filter = replace(
        run_filter,
        created_after=_checked(run_filter.created_after, "created_after"),
        created_before=_checked(run_filter.created_before, "created_before"),
        run_ids=_run_ids(params),
    )
    filters = RunsFilters(given=run_filter, since=params.get("since") or None)
    filters.at(now)  # a bad `since` is refused now
    return filters


def run_filter(params: Mapping[str, str], now: datetime) -> RunFilter:
    """The store's filter for the runs page's filters at `now` (see `runs_filters`)."""
    return runs_filters(params, now).at(now)


def event_filter(params: Mapping[str, str]) -> EventQuery:
    """The events page's `name` and `before`, checked as `GET /v1/events` checks them."""
    given = {name: params[name] for name in ("name", "before") if params.get(name)}
    return parse(EventQuery, given, where="query")


def filter_params(query: RunFilter) -> dict[str, str]:
    """The filled-in filters as query parameters (the runs page's links and forms)."""
    params = {
        "function_id": query.function_id,
        "status": query.status,
        "trigger_kind": query.trigger_kind,
        "error_name": query.error_name,
        "event_id": query.event_id,
        "created_after": moment_text(query.created_after),
        "created_before": moment_text(query.created_before),
        "q": query.q,
        "dry_run": None if query.dry_run is None else str(query.dry_run).lower(),
        "run_ids": None if query.run_ids is None else ",".join(query.run_ids),
        "limit": str(query.limit) if query.limit != PAGE_SIZE else None,
    }
    return {k: v for k, v in params.items() if v}


def criteria(query: RunFilter) -> RunFilter:
    """Only the criteria of a filter: no page cursor, the default page size."""
    return replace(query, before=None, limit=PAGE_SIZE)


def has_criteria(query: RunFilter) -> bool:
    """True when at least one criterion is set (a bulk action needs one)."""
    return criteria(query) != RunFilter(limit=PAGE_SIZE)

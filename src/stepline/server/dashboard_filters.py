"""The runs and events pages' filters: read from a query string or form, and written back.

They are checked exactly as `GET /v1/runs` and `GET /v1/events` check them; the dashboard
adds times typed without an offset (the `datetime-local` inputs, meaning UTC) and `since`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from stepline import errors
from stepline._durations import parse_duration
from stepline.server.models import EventQuery, RunQuery, parse
from stepline.store.base import RunFilter

PAGE_SIZE = 50


def _moment(text: str) -> datetime | str:
    """A time typed into the filters: RFC 3339, or a date and time without offset (UTC)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return text  # the API's parsing says what is wrong with it
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _utc(value: datetime | None, field: str) -> datetime | None:
    """A filter time in UTC, as the form shows it again."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise errors.InvalidInput("must fall within the years 1 to 9999 in UTC", field) from None


def moment_text(value: datetime | None) -> str | None:
    """A filter time as a `datetime-local` input shows it (UTC, whole seconds)."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


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


def run_filter(params: Mapping[str, str], now: datetime) -> RunFilter:
    """The runs page's filters, checked as `GET /v1/runs` checks them.

    Times may also be typed without an offset (a `datetime-local` input), meaning UTC, and
    `since` sets `created_after` to that long before `now`.
    """
    given = _given(params, RunQuery)
    for name in ("created_after", "created_before"):
        if name in given:
            given[name] = _moment(given[name])
    query = parse(RunQuery, given, where="query")
    run_filter = query.run_filter(before=query.before, limit=query.limit)
    run_filter = replace(
        run_filter,
        created_after=_utc(run_filter.created_after, "created_after"),
        created_before=_utc(run_filter.created_before, "created_before"),
    )
    return _since(run_filter, params.get("since"), now)


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
        "limit": str(query.limit) if query.limit != PAGE_SIZE else None,
    }
    return {k: v for k, v in params.items() if v}


def criteria(query: RunFilter) -> RunFilter:
    """Only the criteria of a filter: no page cursor, the default page size."""
    return replace(query, before=None, limit=PAGE_SIZE)


def has_criteria(query: RunFilter) -> bool:
    """True when at least one criterion is set (a bulk action needs one)."""
    return criteria(query) != RunFilter(limit=PAGE_SIZE)

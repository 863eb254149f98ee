"""Talking to the vendor portal: fetch one page, and tell valid records from broken ones.

`fetch_page` is meant to run inside `ctx.step.run`: it raises `stepline.RetryAfterError` on a
429 (so Stepline waits as long as the portal asks), `PortalError` on a 5xx and lets timeouts
propagate (so Stepline retries with backoff), and `stepline.NonRetriableError` when retrying
cannot help (wrong token, bad request).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypedDict

import httpx

import stepline
from examples.base_stations.portal import portal_token, portal_url

DEFAULT_TIMEOUT = 10.0


class Page(TypedDict):
    """A fetched page as stored in the step's result: raw records plus paging totals."""

    page: int
    total_pages: int
    records: list[dict[str, Any]]


class Station(TypedDict):
    """A valid station, shaped like a row of the stations table."""

    serial: str
    name: str
    lat: float
    lon: float
    vendor_updated_at: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that cannot be stored: which one, and what it lacks."""

    label: str
    missing: tuple[str, ...]

    def describe(self, page: int) -> str:
        """A log line such as "skipped record id=10012 ('Soweto 012') on page 1: missing ..."."""
        return f"skipped {self.label} on page {page}: missing {', '.join(self.missing)}"


class PortalError(Exception):
    """The portal failed in a way worth retrying (a 5xx answer)."""


def fetch_page(page: int, per_page: int) -> Page:
    """GET one page of stations from the portal.

    Raises:
        stepline.RetryAfterError: 429; retry after the portal's `Retry-After`.
        PortalError: A 5xx answer; retried with backoff.
        httpx.TimeoutException: No answer in time; retried with backoff.
        stepline.NonRetriableError: Any other error status; retrying will not help.
    """
    timeout = float(os.environ.get("STATIONS_HTTP_TIMEOUT", DEFAULT_TIMEOUT))
    response = httpx.get(
        f"{portal_url()}/api/stations",
        params={"page": page, "per_page": per_page},
        headers={"Authorization": f"Bearer {portal_token()}"},
        timeout=timeout,
    )
    _raise_for_status(response, page)
    body = response.json()
    return {
        "page": page,
        "total_pages": max(1, int(body["total_pages"])),
        "records": list(body["data"]),
    }


def _raise_for_status(response: httpx.Response, page: int) -> None:
    status = response.status_code
    if status == 429:
        delay = _retry_after(response)
        raise stepline.RetryAfterError(f"portal rate-limited page {page}; retry in {delay}s", delay)
    if status >= 500:
        raise PortalError(f"portal answered {status} for page {page}")
    if status >= 400:
        raise stepline.NonRetriableError(f"portal refused page {page}: {status} {response.text}")


def _retry_after(response: httpx.Response) -> float:
    """Seconds from a `Retry-After` header (delay-seconds form), 5 if absent or unreadable."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", "5")))
    except ValueError:
        return 5.0


def validate(record: dict[str, Any]) -> Station | Rejected:
    """The record as a `Station`, or `Rejected` naming the missing fields."""
    serial = serial_of(record)
    location = record.get("location") or {}
    missing = []
    if not serial:
        missing.append("serial number")
    if not _is_number(location.get("lat")) or not _is_number(location.get("lon")):
        missing.append("coordinates")
    if missing or serial is None:
        return Rejected(label=_label(record), missing=tuple(missing))
    return {
        "serial": serial,
        "name": str(record.get("name") or serial),
        "lat": float(location["lat"]),
        "lon": float(location["lon"]),
        "vendor_updated_at": str(record.get("updated_at") or ""),
    }


def serial_of(record: dict[str, Any]) -> str | None:
    """The record's serial number, or None if it has none (missing or blank)."""
    serial = record.get("serial_number")
    return (serial.strip() or None) if isinstance(serial, str) else None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _label(record: dict[str, Any]) -> str:
    serial = serial_of(record)
    who = f"serial {serial!r}" if serial else "no serial"
    return f"record id={record.get('id')} ({record.get('name')!r}, {who})"

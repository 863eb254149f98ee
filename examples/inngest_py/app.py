"""The base-station sync of `examples/base_stations`, written with the official Inngest Python SDK.

A FastAPI app served by `inngest.fast_api`, unchanged from what it would be on Inngest: point it
at Stepline instead (see README.md next to this file) and Stepline syncs it, triggers it (cron or
the `stations/sync.requested` event), retries it, and shows its runs in the dashboard.

It reuses the Stepline example's portal client (`vendor`) and stations table (`db`); only the
function is written against the SDK: `ctx.step.run` steps, a cron trigger with a time zone, an
event trigger, retries, a singleton, `cancel` on `stations/sync.cancel` matching `data.region`,
and `step.send_event` to announce the result.
"""

from __future__ import annotations

import argparse
import os
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn

import stepline
from examples.base_stations import db, vendor

with warnings.catch_warnings():  # the SDK imports pydantic APIs deprecated in pydantic 2
    warnings.simplefilter("ignore")
    import fastapi
    import inngest
    import inngest.fast_api

REQUESTED = "stations/sync.requested"
CANCEL = "stations/sync.cancel"
COMPLETED = "stations/sync.completed"


def fetch_page(page: int, per_page: int) -> vendor.Page:
    """One portal page; the portal's errors as the SDK's (retry later, or never)."""
    try:
        return vendor.fetch_page(page, per_page)
    except stepline.RetryAfterError as exc:
        delay = exc.delay
        if not isinstance(delay, timedelta | datetime):
            delay = timedelta(seconds=delay)
        raise inngest.RetryAfterError(str(exc), delay) from exc
    except stepline.NonRetriableError as exc:
        raise inngest.NonRetriableError(str(exc)) from exc


def synced_now() -> str:
    """The sync's timestamp, taken once in a step so that every replay sees the same one."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def sync_functions(client: inngest.Inngest) -> list[inngest.Function[Any]]:
    """The app's functions, on `client`."""

    @client.create_function(
        fn_id="stations-sync",
        name="Sync base stations (Inngest SDK)",
        trigger=[
            inngest.TriggerCron(cron="TZ=Africa/Johannesburg 0 0 * * *"),
            inngest.TriggerEvent(event=REQUESTED),
        ],
        retries=4,
        singleton=inngest.Singleton(mode="skip", key="event.data.region"),
        cancel=[inngest.Cancel(event=CANCEL, if_exp="async.data.region == event.data.region")],
    )
    def stations_sync(ctx: inngest.ContextSync) -> dict[str, int]:
        per_page = int(ctx.event.data.get("per_page", 100))  # type: ignore[arg-type]
        synced_at = ctx.step.run("begin", synced_now)
        totals = {"fetched": 0, "inserted": 0, "updated": 0, "unchanged": 0, "invalid": 0}
        page, total_pages = 1, 1
        while page <= total_pages:
            fetched = ctx.step.run(f"fetch-page-{page}", fetch_page, page, per_page)
            total_pages = fetched["total_pages"]
            checked = [vendor.validate(record) for record in fetched["records"]]
            stations = [s for s in checked if not isinstance(s, vendor.Rejected)]
            changes = ctx.step.run(f"upsert-page-{page}", db.upsert, stations, synced_at)
            totals["fetched"] += len(fetched["records"])
            totals["invalid"] += len(checked) - len(stations)
            for key in ("inserted", "updated", "unchanged"):
                totals[key] += changes[key]
            page += 1
        ctx.step.send_event(
            "announce", inngest.Event(name=COMPLETED, data={"run_id": ctx.run_id, **totals})
        )
        return totals

    return [stations_sync]


def create_app(client: inngest.Inngest | None = None) -> fastapi.FastAPI:
    """The FastAPI app serving the functions at /api/inngest."""
    client = client or inngest.Inngest(app_id="base-stations-py")
    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, sync_functions(client))
    return app


def main() -> None:
    """Serve the app; the SDK reads INNGEST_DEV / INNGEST_BASE_URL to find Stepline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8300")))
    args = parser.parse_args()
    uvicorn.run(create_app(), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()

"""The base-station sync on the official Inngest Python SDK, run by Stepline (both stores)."""

from __future__ import annotations

import json

import inngest
from examples.base_stations import db, portal
from examples.inngest_py.app import COMPLETED, create_app

from tests.inngest.conftest import Stepline
from tests.loopback import Servers


def test_the_sdk_app_syncs_pages_into_the_stations_table(
    stepline: Stepline, servers: Servers, vendor: portal.Portal
) -> None:
    client = stepline.client("base-stations-py")
    stepline.sync(servers.start(create_app(client)) + "/api/inngest")

    run = stepline.run_of(stepline.send("stations/sync.requested", {"per_page": 50}), timeout=60)

    assert run.status == "COMPLETED", run.error
    totals = json.loads(run.output or "null")
    stored = db.stored_stations()
    assert totals["fetched"] == totals["inserted"] + totals["invalid"] > 0
    assert len(stored) == totals["inserted"]
    steps = [s.id for s in stepline.engine.get_run(run.id).steps]
    assert steps[0] == "begin" and steps[-1] == "announce"
    assert "fetch-page-1" in steps and "upsert-page-1" in steps
    [announced] = stepline.engine.operations.events_page(COMPLETED, 10, None)[0]
    assert json.loads(announced.data)["run_id"] == run.id
    [fn] = [f for f in stepline.engine.store.list_functions() if f.app_id == "base-stations-py"]
    config = json.loads(fn.config)
    assert {"cron": "0 0 * * *", "tz": "Africa/Johannesburg", "missed": "latest"} in config[
        "triggers"
    ]
    assert config["cancel_on"][0]["event"] == "stations/sync.cancel"
    assert isinstance(client, inngest.Inngest)

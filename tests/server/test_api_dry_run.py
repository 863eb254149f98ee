"""Dry runs over HTTP: started by the client or `{"dry_run": true}` on invoke, marked in the
run's JSON and filtered by `dry_run` (both stores)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

import stepline
from stepline.engine.engine import Engine
from tests.flow.support import completed
from tests.flow.test_dry_run import dry_app
from tests.server.conftest import Served


@pytest.mark.parametrize("via", ["client", "api"])
def test_dry_runs_over_http_are_marked_and_filtered(
    make_engine: Callable[..., Engine], serve: Callable[..., Served], via: str
) -> None:
    seen: list[Any] = []
    served = serve(make_engine(dry_app(seen)))
    if via == "client":
        with stepline.Client(served.url) as client:
            run_id = client.invoke("sender", {}, dry_run=True)
    else:
        response = served.http.post("/v1/functions/sender/invoke", json={"dry_run": True})
        assert response.status_code == 201, response.text
        run_id = response.json()["data"]["run_id"]
    real_id = served.http.post("/v1/functions/child/invoke").json()["data"]["run_id"]
    completed(served.engine, run_id)
    completed(served.engine, real_id)

    assert served.http.get(f"/v1/runs/{run_id}").json()["data"]["dry_run"] is True
    dry = _ids(served.http, {"dry_run": "true"})
    assert run_id in dry and real_id not in dry
    assert real_id in _ids(served.http, {"dry_run": "false"})


def _ids(http: httpx.Client, params: dict[str, str]) -> list[str]:
    response = http.get("/v1/runs", params=params)
    assert response.status_code == 200, response.text
    return [run["id"] for run in response.json()["data"]]
